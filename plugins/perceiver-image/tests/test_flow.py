"""Optical flow pieces of perceiver-image: tiled inference, pair augmentation, bounded file readers, the colour
wheel and the flow task's metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perceiver_core import BuildContext, build_from_spec, collate
from perceiver_core.errors import UserError
from perceiver_core.registry.file import resolve_table
from perceiver_image.flow import io
from perceiver_image.flow.augment import augment_pair
from perceiver_image.flow.colour import flow_to_colour
from perceiver_image.flow.tiling import edge_weights, tile_starts, tiled_apply

TILE = (12, 16)


def tiny_flow_model(seed: int = 0, tile=TILE):
    table = {"task": {"use": "image.flow"}, "data": {"use": "none", "image_shape": [*tile, 3]},
             "preprocessor": {"use": "image.flow", "channels": 16}, "position": {"use": "fourier", "num_bands": 4,
                                                                                 "max_resolution": list(tile)},
             "encoder": {"use": "perceiver", "num_latents": 8, "latent_channels": 32, "num_blocks": 1,
                         "self_attends_per_block": 1, "self_attend_heads": 4},
             "decoder": {"use": "image.flow_decoder"}}
    spec = resolve_table("tiny-flow", table, "test")
    torch.manual_seed(seed)
    model = build_from_spec(spec).eval()
    with torch.no_grad():  # the head starts at zero: give it weights so the model predicts something
        model.decoder.head.weight.normal_(0, 1.0)
        model.decoder.head.bias.normal_(0, 1.0)
    return model


def pair_batch(model, h, w, seed=0):
    frames = np.random.default_rng(seed).random((2, h, w, 3)).astype(np.float32)
    return collate([model.prepare({"frames": frames})])


# -- tiling -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [TILE, (12, 10), (7, 16), (5, 5)])
def test_tiled_equals_untiled_when_the_frame_fits_one_tile(size):
    model = tiny_flow_model()
    batch = pair_batch(model, *size)
    with torch.no_grad():
        tiled = model.predict(batch)[0]["flow"]
        direct = model.task.postprocess(model(batch), batch)[0]["flow"]
    assert tiled.shape == (*size, 2)
    np.testing.assert_array_equal(tiled, direct)


def test_tiles_cover_the_frame_with_the_minimum_overlap():
    for size, tile, overlap in [(436, 368, 20), (1024, 496, 20), (40, 16, 4), (17, 16, 4), (100, 30, 29)]:
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] == size - tile
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # neighbours overlap enough
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 20, 20)
    assert edge_weights(3, 4).tolist() == [[1, 1, 1, 1], [1, 2, 2, 1], [1, 1, 1, 1]]


def smooth_field(h: int, w: int) -> torch.Tensor:
    """A smooth synthetic flow field [H, W, 2] (pixels)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([3 * torch.sin(2 * x + y), 2 * torch.cos(3 * y - x)], dim=-1)


def test_tiling_is_exact_and_seamless_on_a_smooth_field():
    """A 'model' that reads the flow off its input reproduces a smooth field through 6 x 6 overlapping tiles
    exactly. A model whose tiles disagree (each off by its own random constant in [0, 1] pixels: the worst case of
    a tile-relative bias) is blended without a seam: no step between neighbouring pixels above 0.15 pixels, where
    hard stitching of the same tiles jumps by up to 1 and DeepMind's weights step by up to ~0.5 along the frame's
    border (plain averaging there)."""
    h, w = 30, 50
    field = smooth_field(h, w)  # [H, W, 2]
    x = field.permute(2, 0, 1)[None]  # [1, 2, H, W]: the field carried as the input's two channels

    def reads_field(tiles):  # [n, 2, h, w] -> [n, h*w, 2]
        return tiles.flatten(2).transpose(1, 2)

    out = tiled_apply(reads_field, x, TILE, min_overlap=8).reshape(h, w, 2)
    torch.testing.assert_close(out, field, rtol=0, atol=1e-6)

    def max_step(weights: str, seed: int) -> float:
        g = torch.Generator().manual_seed(seed)

        def biased(tiles):
            return reads_field(tiles) + torch.rand(len(tiles), generator=g)[:, None, None]

        error = tiled_apply(biased, x, TILE, min_overlap=8, tile_batch=1, weights=weights).reshape(h, w, 2) - field
        return max(float(error.diff(dim=0).abs().max()), float(error.diff(dim=1).abs().max()))

    for seed in range(3):
        assert max_step("interior", seed) < 0.15
    assert max(max_step("deepmind", seed) for seed in range(3)) > 0.3  # the test can tell a seam


def test_tiled_prediction_runs_the_pipeline_tile_by_tile():
    """The real pipeline on a 30x50 pair through 12x16 tiles: every tile is the training size, the result has
    the frame's size and differs from one pass over the whole frame (the tiles were really used)."""
    model = tiny_flow_model()
    model.task.config.tile_overlap = 6
    batch = pair_batch(model, 30, 50)
    seen = []
    hook = model.preprocessor.register_forward_hook(lambda m, args, out: seen.append(out.index_shape))
    with torch.no_grad():
        tiled = model.predict(batch)[0]["flow"]
        hook.remove()
        whole = model.task.postprocess(model(batch), batch)[0]["flow"]
    assert set(seen) == {TILE} and tiled.shape == whole.shape == (30, 50, 2)
    assert np.isfinite(tiled).all() and not np.allclose(tiled, whole)


# -- augmentation -----------------------------------------------------------------------------------------------
def shifted_pair(h=20, w=24, dx=3, dy=-2, seed=0):
    """frame1 = frame0 moved by (dx, dy): the flow is (dx, dy) where the moved content stays inside."""
    big = torch.rand(h + 10, w + 10, 3, generator=torch.Generator().manual_seed(seed))
    f0 = big[5:5 + h, 5:5 + w]
    f1 = big[5 - dy:5 - dy + h, 5 - dx:5 - dx + w]  # f1[y + dy, x + dx] = f0[y, x]
    flow = torch.tensor([float(dx), float(dy)]).expand(h, w, 2).clone()
    return {"frames": torch.stack([f0, f1]), "flow": flow}


def consistent(example) -> bool:
    """frame1[y + v, x + u] == frame0[y, x] wherever that stays inside the frame and the flow is valid."""
    f0, f1 = example["frames"]
    flow, valid = example["flow"], example["valid"]
    h, w = f0.shape[:2]
    ok = True
    for y in range(h):
        for x in range(w):
            u, v = int(flow[y, x, 0]), int(flow[y, x, 1])
            if valid[y, x] and 0 <= y + v < h and 0 <= x + u < w:
                ok &= bool(torch.equal(f1[y + v, x + u], f0[y, x]))
    return ok


@pytest.mark.parametrize("flags", [dict(hflip=1.0), dict(vflip=1.0), dict(hflip=1.0, vflip=1.0), {}])
def test_flips_keep_frames_and_flow_consistent(flags):
    example = shifted_pair()
    out = augment_pair(example, torch.Generator().manual_seed(0), size=(12, 16), **flags)
    assert out["frames"].shape == (2, 12, 16, 3) and out["flow"].shape == (12, 16, 2)
    assert consistent(out)
    u, v = out["flow"][0, 0].tolist()
    assert u == (-3 if flags.get("hflip") else 3) and v == (2 if flags.get("vflip") else -2)


def test_a_wrong_flip_is_caught_by_the_consistency_check():
    out = augment_pair(shifted_pair(), torch.Generator().manual_seed(0), size=None, hflip=1.0)
    out["flow"][..., 0] = -out["flow"][..., 0]  # forgetting to negate u
    assert not consistent(out)


def test_reverse_uses_the_backward_flow_only_when_given():
    example = shifted_pair()
    forward_only = augment_pair(example, torch.Generator().manual_seed(0), size=None, reverse=1.0)
    assert torch.equal(forward_only["frames"], example["frames"])  # no backward flow: never reversed
    both = {**example, "flow_backward": -example["flow"]}
    out = augment_pair(both, torch.Generator().manual_seed(0), size=None, reverse=1.0)
    assert torch.equal(out["frames"][0], example["frames"][1]) and out["flow"][0, 0].tolist() == [-3.0, 2.0]
    assert consistent(out)


def test_augmentation_is_deterministic_per_generator_and_crops_to_the_training_size():
    model = tiny_flow_model()
    model.preprocessor.config.hflip = 0.5
    example = shifted_pair(h=30, w=40)
    a = model.preprocessor.augment(example, torch.Generator().manual_seed(3))
    b = model.preprocessor.augment(example, torch.Generator().manual_seed(3))
    assert torch.equal(a["frames"], b["frames"]) and a["frames"].shape[1:3] == TILE
    prepared = model.prepare(a)
    assert prepared["frames"].shape == (2, 3, *TILE) and prepared["valid"].shape == TILE


# -- file readers -----------------------------------------------------------------------------------------------
def test_flo_and_pfm_round_trip(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    io.write_flo(tmp_path / "a.flo", flow)
    np.testing.assert_array_equal(io.read_flo(tmp_path / "a.flo"), flow)
    np.testing.assert_array_equal(io.read_flow(tmp_path / "a.flo"), flow)
    disparity = np.random.default_rng(1).random((6, 4)).astype(np.float32)
    io.write_pfm(tmp_path / "d.pfm", disparity)
    np.testing.assert_array_equal(io.read_disparity(tmp_path / "d.pfm"), disparity)
    rgb = np.random.default_rng(2).random((3, 5, 3)).astype(np.float32)
    io.write_pfm(tmp_path / "f.pfm", rgb)
    np.testing.assert_array_equal(io.read_flow(tmp_path / "f.pfm"), rgb[..., :2])


def test_huge_or_inconsistent_headers_are_refused_before_allocating(tmp_path):
    (tmp_path / "huge.flo").write_bytes(np.array([202021.25], "<f4").tobytes()
                                        + np.array([200_000, 300_000], "<i4").tobytes() + b"\0" * 16)
    with pytest.raises(UserError, match="refused"):
        io.read_flo(tmp_path / "huge.flo")
    (tmp_path / "short.flo").write_bytes(np.array([202021.25], "<f4").tobytes()
                                         + np.array([10, 10], "<i4").tobytes() + b"\0" * 16)
    with pytest.raises(UserError, match="bytes"):
        io.read_flo(tmp_path / "short.flo")
    (tmp_path / "huge.pfm").write_bytes(b"Pf\n100000 100000\n-1.0\n" + b"\0" * 16)
    with pytest.raises(UserError, match="refused"):
        io.read_pfm(tmp_path / "huge.pfm")
    (tmp_path / "short.pfm").write_bytes(b"PF\n10 10\n-1.0\n" + b"\0" * 16)
    with pytest.raises(UserError, match="fewer values"):
        io.read_pfm(tmp_path / "short.pfm")
    (tmp_path / "bad.flo").write_bytes(b"NOPE" + b"\0" * 20)
    with pytest.raises(UserError, match="not a .flo"):
        io.read_flo(tmp_path / "bad.flo")


def test_png_disparity_and_npy_ground_truth(tmp_path):
    from PIL import Image

    d = np.array([[0, 256, 512], [1024, 0, 2560]], dtype=np.uint16)
    Image.fromarray(d).save(tmp_path / "d.png")
    got = io.read_disparity(tmp_path / "d.png")
    assert np.isnan(got[0, 0]) and np.isnan(got[1, 1]) and got[0, 1] == 1.0 and got[1, 2] == 10.0
    np.save(tmp_path / "f.npy", np.zeros((3, 4, 3), np.float32))
    with pytest.raises(UserError, match=r"\[H, W, 2\]"):
        io.read_flow(tmp_path / "f.npy")


# -- colour wheel ---------------------------------------------------------------------------------------------
def test_colour_wheel_directions():
    flow = np.array([[[0, 0], [5, 0], [-5, 0]], [[0, -5], [0, 5], [np.nan, 0]]], dtype=np.float32)
    rgb = flow_to_colour(flow).astype(int)
    assert rgb[0, 0].tolist() == [255, 255, 255]  # no motion: white
    assert rgb[0, 1, 0] == 255 and rgb[0, 1, 1] < 60  # right: red
    assert rgb[0, 2, 0] < 60 and rgb[0, 2, 2] > 150  # left: cyan-blue
    assert rgb[1, 0, 2] > 150 and rgb[1, 0, 1] < 60  # up: blue-magenta
    assert rgb[1, 1, 0] > 150 and rgb[1, 1, 1] > 100 and rgb[1, 1, 2] < 60  # down: yellow-orange
    assert rgb[1, 2].tolist() == [0, 0, 0]  # unknown: black


# -- task -------------------------------------------------------------------------------------------------------
def test_flow_task_metrics_and_loss():
    from perceiver_image.configs import FlowTaskConfig
    from perceiver_image.flow.task import FlowTask

    task = FlowTask(FlowTaskConfig(flow_scale=20.0), BuildContext())
    flow = torch.zeros(1, 2, 2, 2)
    flow[0, 0, 0] = torch.tensor([3.0, 4.0])  # |gt| = 5
    valid = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    predicted_px = torch.tensor([[[3.0, 4.0], [4.0, 0.0], [0.0, 0.5], [100.0, 0.0]]])  # errors 0, 4, 0.5, (invalid)
    outputs = predicted_px / 20.0
    m = task.metrics(outputs, {"flow": flow, "valid": valid})
    assert m["epe"] == (pytest.approx(4.5), 3) and m["outliers"] == (1.0, 3)
    assert float(task.loss(outputs, {"flow": flow, "valid": valid})) == pytest.approx(4.5 / 3 / 20)


def test_wide_patches_hold_each_pixels_horizontal_neighbourhood():
    from perceiver_image.flow.patches import frame_patches

    frames = torch.randn(1, 2, 3, 6, 9)  # [B, 2, C, H, W]
    patches = frame_patches(frames, (3, 5))  # [B, 2, 3*5*3, H, W]
    padded = torch.nn.functional.pad(frames, (2, 2, 1, 1))  # zero padding of 1 row, 2 columns
    y, x = 4, 7
    expected = padded[0, :, :, y:y + 3, x:x + 5].permute(0, 2, 3, 1).reshape(2, 45)  # (row, column, channel)
    assert torch.equal(patches[0, :, :, y, x], expected)
