"""image.pixels: the prepared path and the raw-tensor path (HF-style [B, C, H, W] input) agree."""

import pytest
import torch

from perceiver_core import BuildContext
from perceiver_image.configs import PixelsConfig
from perceiver_image.pixels import PixelPreprocessor


def test_raw_image_tensor_matches_prepared_pixels_with_permutation():
    pre = PixelPreprocessor(PixelsConfig(permute_seed=3, mean=(0.0,), std=(1.0,)),
                            BuildContext(dataset={"image_shape": (4, 5, 3)}))
    images = torch.rand(2, 4, 5, 3)  # [B, H, W, C]
    prepared = torch.stack([pre.prepare({"image": img})["pixels"] for img in images])
    a = pre({"pixels": prepared})
    b = pre({"image": images.permute(0, 3, 1, 2)})  # [B, C, H, W]
    torch.testing.assert_close(a.data, b.data)
    assert a.positions is b.positions


def test_photo_crops_are_real_and_train_test_do_not_overlap():
    pytest.importorskip("PIL")
    from perceiver_image.configs import PhotosConfig
    from perceiver_image.photos import PhotosDataset

    data = PhotosDataset(PhotosConfig(crop=256, train_crops=8, test_crops=4))
    assert data.info()["image_shape"] == (256, 256, 3)
    train, test = data.examples("train"), data.examples("test")
    assert len(train) == 8 and len(test) == 4
    image = train[0]["image"]
    assert image.shape == (256, 256, 3) and image.dtype.name == "uint8" and image.std() > 10  # a photograph
    width = 640
    assert all(x + 256 <= width - 256 for _, _, x in train.items)  # training crops left of the test columns
    assert all(x == width - 256 for _, _, x in test.items)
    with pytest.raises(Exception, match="no split"):
        data.examples("validation")
