"""`encoder.residual_dtype`: a bf16 residual stream under bf16 autocast (issue 16), for the Perceiver / Perceiver IO
encoder and HiP's encoder and decoder blocks.

- default ("float32"): nothing changes; with "bfloat16" but no autocast, outputs and gradients are bit-for-bit
  those of the default (the option only acts under bf16 autocast), so every fp32 parity test is unchanged;
- under bf16 autocast (on the CPU here) every block's stream is bf16 with the option and fp32 without it, and the
  outputs agree within bf16 rounding;
- a training run asking for it without bf16 autocast is refused in one line.
"""

from __future__ import annotations

import pytest
import torch

from perceiver_core.commands.bench.models import build_ours, ours_batch
from perceiver_core.commands.bench.presets import PRESETS
from perceiver_core.errors import UserError
from perceiver_core.model.layers.attention import CrossAttention, SelfAttention
from perceiver_core.model.layers.residual import check_residual_dtype, residual_stream

pytest.importorskip("perceiver_image")


def _pair(preset: str, **encoder):
    """The preset's model with the default stream and with a bf16 stream, same weights."""
    torch.manual_seed(0)
    base = build_ours(PRESETS[preset], overrides={"encoder": dict(encoder)})
    torch.manual_seed(0)
    bf16 = build_ours(PRESETS[preset], overrides={"encoder": {**encoder, "residual_dtype": "bfloat16"}})
    bf16.load_state_dict(base.state_dict())
    return base, bf16


def _stream_dtypes(model, run) -> list[torch.dtype]:
    """The dtype of the residual stream entering every cross- and self-attend block of the encoder, in order."""
    seen = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].dtype))
             for name, m in model.named_modules()
             if isinstance(m, (CrossAttention, SelfAttention)) and name.startswith("encoder.")]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return seen


def _images(batch: int, size: int) -> torch.Tensor:
    return torch.rand(batch, size, size, 3, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("preset", ["tiny", "hip-tiny"])
def test_without_autocast_the_option_changes_nothing(preset):
    base, bf16 = _pair(preset)
    batch = ours_batch(_images(2, 16))
    labels = torch.tensor([1, 7])
    outs, grads = [], []
    for model in (base, bf16):
        model.train()
        loss = model.task.loss(model(batch), {**batch, "label": labels})
        loss.backward()
        outs.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
        assert _stream_dtypes(model, lambda: model(batch)) and set(_stream_dtypes(model, lambda: model(batch))) == {
            torch.float32}
    assert torch.equal(outs[0], outs[1])
    assert len(grads[0]) == len(grads[1]) and all(torch.equal(a, b) for a, b in zip(*grads))


@pytest.mark.parametrize("preset", ["tiny", "hip-tiny"])
def test_under_bf16_autocast_the_stream_is_bf16(preset):
    base, bf16 = _pair(preset)
    batch = ours_batch(_images(2, 16))
    logits = {}
    for name, model in (("fp32", base), ("bf16", bf16)):
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            dtypes = _stream_dtypes(model, lambda: logits.__setitem__(name, model(batch).float()))
        # the cross-attend's queries and every self-attend's input are the stream
        assert len(dtypes) >= 3
        assert set(dtypes) == ({torch.bfloat16} if name == "bf16" else {torch.float32}), (name, dtypes)
    assert not torch.equal(logits["fp32"], logits["bf16"])  # the option does act under autocast
    torch.testing.assert_close(logits["bf16"], logits["fp32"], rtol=0.05, atol=0.05)


def test_bf16_stream_trains_with_gradients_everywhere():
    _, model = _pair("tiny")
    batch = ours_batch(_images(2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.task.loss(model(batch), {**batch, "label": torch.tensor([3, 4])})
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)


def test_hip_decoder_blocks_follow_the_encoder():
    """HiP's decoder mirrors the encoder's config: its blocks run the stream in bf16 too."""
    from perceiver_core.model.build import build_pipeline

    model = build_pipeline("hip-tiny", overrides=["encoder.residual_dtype=bfloat16"]).eval()
    assert all(b.residual_dtype == "bfloat16" for b in [*model.encoder.blocks, *model.decoder.blocks])
    from perceiver_core.data.loader import collate
    from perceiver_core.model.pipeline import build_dataset

    examples = build_dataset(model.spec).examples("test")
    batch = collate([model.prepare(examples[i]) for i in range(2)])
    seen = []
    hooks = [b.self_attends[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].dtype))
             for b in model.decoder.blocks if len(b.self_attends)]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(batch)
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {torch.bfloat16}


def test_residual_stream_casts_only_under_bf16_autocast():
    x = torch.randn(2, 3)
    assert residual_stream(x, "bfloat16") is x  # no autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert residual_stream(x, "bfloat16").dtype == torch.bfloat16
        assert residual_stream(x, "float32") is x


def test_training_without_bf16_autocast_is_refused(cli, tmp_path):
    from perceiver_core.config.encoders import PerceiverEncoderConfig

    check_residual_dtype(PerceiverEncoderConfig(residual_dtype="bfloat16"), torch.bfloat16)  # fine
    check_residual_dtype(PerceiverEncoderConfig(), None)  # the default: fine everywhere
    for dtype, named in ((None, "no autocast (fp32)"), (torch.float16, "float16 autocast")):
        with pytest.raises(UserError, match="needs bf16 autocast") as info:
            check_residual_dtype(PerceiverEncoderConfig(residual_dtype="bfloat16"), dtype)
        assert named in str(info.value) and "train.precision" in str(info.value)
    from pathlib import Path

    tiny = Path(__file__).parent / "tiny.toml"
    result = cli("train", "tiny", "--registry", str(tiny), "--out", str(tmp_path), "--set", "backend=cpu",
                 "--set", "train.precision=fp32", "--set", "encoder.residual_dtype=bfloat16")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "encoder.residual_dtype" in result.stderr
    bad = cli("validate", str(tiny), "--set", "encoder.residual_dtype=float16")
    assert bad.returncode == 2 and "residual_dtype" in bad.stderr and "Traceback" not in bad.stderr
