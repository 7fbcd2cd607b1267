"""image.pixels: the prepared path and the raw-tensor path (HF-style [B, C, H, W] input) agree."""

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
