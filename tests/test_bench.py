"""`perceiver bench`: presets match their references, FLOPs are counted (attention analytically), and the
CI-sized preset runs end to end in seconds. Timings are printed by the bench, never asserted here."""

from __future__ import annotations

import json

import pytest
import torch

from perceiver_core.commands.bench.flops import analytic_attention_flops, attention_shapes, count_flops
from perceiver_core.commands.bench.models import build_ours, ours_batch, parameter_count
from perceiver_core.commands.bench.presets import PRESETS
from perceiver_core.commands.cli import main

pytest.importorskip("perceiver_image")


def test_imagenet_preset_is_the_reference_config():
    model = build_ours(PRESETS["imagenet"])
    enc = model.encoder
    assert (enc.num_latents, enc.latent_channels) == (512, 1024)
    assert model.context.input_channels == 261 and enc.cross_attends[0].attention.qk_channels == 261
    assert enc.block_plan == [0] * 8 and len(enc.blocks[0].layers) == 6
    assert abs(parameter_count(model) / 1e6 - 48.4) < 0.1, parameter_count(model)


@pytest.mark.parametrize("name", ["tiny", pytest.param("imagenet", marks=pytest.mark.slow)])
def test_hf_model_of_a_preset_matches_ours_in_size(name):
    pytest.importorskip("transformers")
    from perceiver_core.commands.bench.models import build_hf

    ours, hf = build_ours(PRESETS[name]), build_hf(PRESETS[name])
    # the same architecture: parameter counts within 2% (the decoders' query and MLP sizes may differ slightly)
    assert abs(parameter_count(hf) - parameter_count(ours)) / parameter_count(ours) < 0.02, name


def test_attention_flops_are_counted_analytically():
    model = build_ours(PRESETS["tiny"]).eval()
    batch = ours_batch(torch.rand(2, 16, 16, 3))
    shapes = attention_shapes(model, lambda: model(batch))
    flops = count_flops(lambda: model(batch), model)  # autograd on: FlopCounterMode's tracker needs it
    # cross-attend (32 latents over 256 pixels, 1 head of 3 + 2*9 = 21 channels) comes first
    assert shapes[0] == (2, 1, 32, 256, 21, 21)
    assert len(shapes) == 1 + 2 * 2 + 1  # cross-attend, 2 blocks x 2 self-attends, decoder
    assert flops["attention"] == analytic_attention_flops(shapes, backward=False) > 0
    assert flops["total"] == flops["counted"] + flops["attention"]
    assert analytic_attention_flops(shapes, backward=True) == 3 * flops["attention"]


def test_bench_cli_tiny_preset_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--backend", "cpu", "--preset", "tiny", "--batch", "2", "--steps", "2", "--warmup", "1",
            "--out", str(out), "--quiet"]
    has_hf = True
    try:
        import transformers  # noqa: F401
    except ImportError:
        has_hf = False
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "ours img/s" in table and "x HF" in table
    report = json.loads(out.read_text())
    assert report["backend"] == "cpu" and report["peak_flops"] > 0
    assert [(r["mode"], r["batch"]) for r in report["rows"]] == [("train", 2), ("infer", 2)]
    for row in report["rows"]:
        assert row["ours"]["images_per_s"] > 0 and 0 < row["ours"]["mfu"]
        assert len(row["ours"]["times"]) == 2
        if has_hf:
            assert row["hf"]["images_per_s"] > 0 and row["speedup_vs_hf"] > 0


def test_bench_cli_errors_are_one_line(capsys):
    assert main(["bench", "--backend", "nonesuch", "--preset", "tiny", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("perceiver: error:") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["bench", "--batch", "0"])


def test_bench_parser_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from perceiver_core.commands.cli import build_parser; build_parser().parse_args(['bench']); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_hf_out_of_memory_keeps_our_row(monkeypatch):
    pytest.importorskip("transformers")
    from perceiver_core.commands.bench import runner

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("HF does not fit (test)")

    monkeypatch.setattr(runner, "build_hf", oom)
    report = runner.run_bench(runner.BenchOptions(preset="tiny", backend="cpu", batches=(2,), modes=("infer",),
                                                  steps=1, warmup=0))
    (row,) = report["rows"]
    assert row["hf_error"] == "out of memory" and "hf" not in row and row["ours"]["images_per_s"] > 0
    assert "(HF: out of memory)" in runner.format_table(report)
