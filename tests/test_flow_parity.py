"""Optical flow parity with HF transformers' PerceiverForOpticalFlow: small random HF models (several configs,
non-square training sizes), saved with save_pretrained and imported with `perceiver import-hf`, give HF's flow
within 1e-5 relative error in fp32, from HF's pre-extracted patches [B, 2, 27, H, W] and from raw frames; the
`flow-sintel` preset has HF's parameter count.

`python tests/test_flow_parity.py` prints the parity table of docs/flow.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="parity tests compare against HF transformers, "
                                                          "which is not installed (pip install transformers)")

from perceiver_core import build_preset, collate, from_checkpoint  # noqa: E402
from perceiver_core.commands.cli import main as cli_main  # noqa: E402
from hf_reference import random_hf_model as _random_hf  # noqa: E402
from hf_reference import relative_error  # noqa: E402

TOLERANCE = 1e-5
CASES = {
    "small": dict(num_latents=8, d_latents=32, num_blocks=1, num_self_attends_per_block=2, num_self_attention_heads=4,
                  num_cross_attention_heads=1, train_size=[12, 20]),
    "shared-blocks": dict(num_latents=16, d_latents=48, num_blocks=2, num_self_attends_per_block=1,
                          num_self_attention_heads=2, num_cross_attention_heads=2, cross_attention_widening_factor=2,
                          self_attention_widening_factor=2, train_size=[9, 14]),
    "qk-v-channels": dict(num_latents=8, d_latents=32, num_blocks=1, num_self_attends_per_block=3,
                          num_self_attention_heads=4, num_cross_attention_heads=1, qk_channels=16, v_channels=32,
                          train_size=[16, 8]),
}


def random_hf_flow(case: str, folder, seed: int = 0):
    """PerceiverForOpticalFlow with every weight random (its zero-initialised head too), saved to folder."""
    return _random_hf(transformers.PerceiverForOpticalFlow, transformers.PerceiverConfig(**CASES[case]), folder, seed)


def imported(case: str, tmp_path):
    hf = random_hf_flow(case, tmp_path / "hf")
    assert cli_main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "ours.safetensors")]) == 0
    return hf, from_checkpoint(tmp_path / "ours.safetensors")


def reference_patches(frames: torch.Tensor) -> torch.Tensor:
    """DeepMind's patches_for_flow, written out: frames [B, 2, H, W, C] -> [B, 2, 9C, H, W]; each frame padded
    by one zero pixel, the 3x3 neighbourhood in (row, column, channel) order."""
    b, t, h, w, c = frames.shape
    padded = torch.nn.functional.pad(frames, (0, 0, 1, 1, 1, 1))  # [B, 2, H+2, W+2, C]
    parts = [padded[:, :, i:i + h, j:j + w, :] for i in range(3) for j in range(3)]  # 9 x [B, 2, H, W, C]
    return torch.stack(parts, dim=-2).reshape(b, t, h, w, 9 * c).permute(0, 1, 4, 2, 3)


def flow_parity(case: str, tmp_path) -> tuple[float, float]:
    """(error from HF patches, error from raw frames through prepare) for one config."""
    hf, ours = imported(case, tmp_path)
    h, w = CASES[case]["train_size"]
    g = torch.Generator().manual_seed(1)
    patches = torch.randn(2, 2, 27, h, w, generator=g)
    frames = torch.rand(2, 2, h, w, 3, generator=g)  # in [0, 1]
    with torch.no_grad():
        expected = hf(inputs=patches).logits  # [B, H, W, 2]
        got = ours({"patches": patches}).reshape(expected.shape)  # [B, H*W, 2] -> [B, H, W, 2]
        from_patches = relative_error(got, expected)
        expected = hf(inputs=reference_patches(frames * 2 - 1)).logits  # the colab's normalisation to [-1, 1]
        batch = collate([ours.prepare({"frames": f.numpy()}) for f in frames])
        got = ours(batch).reshape(expected.shape)
        from_frames = relative_error(got, expected)
    return from_patches, from_frames


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_flow_model_matches_hf(case, tmp_path):
    from_patches, from_frames = flow_parity(case, tmp_path)
    assert from_patches < TOLERANCE and from_frames < TOLERANCE


def test_raw_frame_patches_equal_deepmind_order():
    from perceiver_image.flow.patches import frame_patches

    frames = torch.randn(2, 2, 5, 7, 3)  # [B, 2, H, W, C]
    ours = frame_patches(frames.permute(0, 1, 4, 2, 3), 3)  # from [B, 2, C, H, W]
    assert torch.equal(ours, reference_patches(frames))


def test_flow_sintel_parameter_count_equals_hf():
    model = build_preset("flow-sintel")
    assert next(model.parameters()).device.type == "meta"
    assert sum(p.numel() for p in model.parameters()) == 41_057_134
    config = transformers.PerceiverConfig(num_latents=2048, d_latents=512, num_blocks=1,
                                          num_self_attends_per_block=24, num_self_attention_heads=16,
                                          num_cross_attention_heads=1, train_size=[368, 496])
    with torch.device("meta"):
        hf = transformers.PerceiverForOpticalFlow(config)
    assert sum(p.numel() for p in hf.parameters()) == 41_057_134
    assert model.context.input_channels == 322


def test_flow_decoder_head_starts_at_zero():
    from perceiver_core import BuildContext
    from perceiver_image.configs import FlowDecoderConfig
    from perceiver_image.flow.decoder import FlowDecoder

    decoder = FlowDecoder(FlowDecoderConfig(), BuildContext(latent_channels=16, input_channels=40))
    assert not decoder.head.weight.any() and not decoder.head.bias.any()


def test_hf_refuses_flow_labels_we_train(tmp_path):
    """HF raises NotImplementedError when given labels; our imported model has a loss and gradients."""
    hf, ours = imported("small", tmp_path)
    patches = torch.randn(1, 2, 27, 12, 20)
    with pytest.raises(NotImplementedError):
        hf(inputs=patches, labels=torch.zeros(1, 12, 20, 2))
    batch = {"patches": patches, "flow": torch.randn(1, 12, 20, 2), "valid": torch.ones(1, 12, 20)}
    loss, _ = ours.train().loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and ours.decoder.head.weight.grad.abs().sum() > 0


def test_predict_writes_flow_files(tmp_path, capsys):
    from perceiver_image.flow.io import read_flo

    _, ours = imported("small", tmp_path)
    frames = np.random.default_rng(0).integers(0, 256, (2, 12, 20, 3), dtype=np.uint8)
    np.save(tmp_path / "pair.npy", frames)
    capsys.readouterr()
    assert cli_main(["predict", ours.spec.name, "--checkpoint", str(tmp_path / "ours.safetensors"),
                     str(tmp_path / "pair.npy"), "--out", str(tmp_path / "pred"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert sorted(row["files"]) == sorted(str(tmp_path / "pred" / f"pair.{e}") for e in ("flo", "npy", "png"))
    flow = read_flo(tmp_path / "pred" / "pair.flo")
    with torch.no_grad():
        expected = ours(collate([ours.prepare({"frames": frames})])).reshape(12, 20, 2) * 20  # pixels
    np.testing.assert_allclose(flow, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "pred" / "pair.npy"), flow)


if __name__ == "__main__":  # the parity table of docs/flow.md
    import tempfile
    from pathlib import Path

    print("| config | from HF patches | from raw frames |\n|---|---|---|")
    for name in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            a, b = flow_parity(name, Path(tmp))
        cfg = ", ".join(f"{k}={v}" for k, v in CASES[name].items())
        print(f"| {cfg} | {a:.2e} | {b:.2e} |")
