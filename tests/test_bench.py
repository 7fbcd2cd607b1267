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


def test_every_preset_times_at_least_ten_steps():
    """The measurement guide's floor: a median of at least 10 timed steps, in every preset by default."""
    for name, preset in PRESETS.items():
        assert preset.steps >= 10, name
    assert {"hip-16", "hip-256", "imagenet-large-train"} <= set(PRESETS)
    large = PRESETS["imagenet-large-train"]
    assert large.sizes == (1024, 2048) and large.modes == ("train",) and large.batches == (1,)
    assert large.sections == PRESETS["imagenet"].sections  # the Perceiver IO ImageNet config itself


def test_bench_hf_sweep_best_vs_best_and_profile(tmp_path, monkeypatch):
    """An HF batch sweep runs HF alone over its own batches and the table gives the best-vs-best ratio; a profile
    file gets the grouped operator table of our steps; chunk keys train through the split-key cross-attend."""
    pytest.importorskip("transformers")
    from perceiver_core.commands.bench import runner
    from perceiver_core.model.layers import kernels

    calls = []
    original = kernels.chunked_cross_attend
    monkeypatch.setattr(kernels, "chunked_cross_attend",
                        lambda *a, **k: calls.append(torch.is_grad_enabled()) or original(*a, **k))
    monkeypatch.setattr(runner, "matmul_peak", lambda *a, **k: 1e11)  # seconds of matmuls, not what is tested
    prof = tmp_path / "profile.txt"
    previous = kernels.get_policy()
    try:
        report = runner.run_bench(runner.BenchOptions(
            preset="tiny", backend="cpu", batches=(2,), modes=("train",), steps=1, warmup=0, hf_batches=(1, 2),
            chunk_keys=64, profile=str(prof), profile_steps=1))
    finally:
        kernels.set_policy(previous)
    table = runner.format_table(report)
    assert [(r["mode"], r["batch"]) for r in report["hf_sweep"]] == [("train", 1), ("train", 2)]
    assert all("ours" not in r and r["hf"]["images_per_s"] > 0 for r in report["hf_sweep"])
    (best,) = report["best_vs_best"]
    hf_rates = [r["hf"]["images_per_s"] for r in report["hf_sweep"] + report["rows"]]
    assert best["hf_images_per_s"] == max(hf_rates) and best["ours_batch"] == 2
    assert best["ratio"] == pytest.approx(best["ours_images_per_s"] / best["hf_images_per_s"])
    assert "best vs best, train 16^2" in table and "HF alone: train batch 1" in table
    text = prof.read_text()
    assert text.startswith("tiny train batch 2 16^2") and "matmul" in text and "top operators" in text
    assert report["rows"][0]["ours"]["profile"]["busy_ms_per_step"] > 0
    assert True in calls  # 256 pixels over chunks of 64, with gradients: the split-key path trained


def test_bench_cli_passes_the_new_flags(monkeypatch, tmp_path):
    from perceiver_core.commands.bench import runner

    seen = []
    monkeypatch.setattr(runner, "run_bench", lambda opts: seen.append(opts) or {})
    monkeypatch.setattr(runner, "format_table", lambda report: "")
    assert main(["bench", "--preset", "imagenet-batch", "--hf-batch", "16,32", "--profile",
                 str(tmp_path / "p.txt"), "--quiet"]) == 0
    assert seen[0].hf_batches == (16, 32) and seen[0].profile == str(tmp_path / "p.txt")
    assert seen[0].preset == "imagenet-batch"


def test_bench_flag_errors_are_one_line(tmp_path, capsys):
    assert main(["bench", "--preset", "tiny", "--no-hf", "--hf-batch", "2", "--quiet"]) == 2
    assert "--hf-batch runs HF's model" in capsys.readouterr().err
    assert main(["bench", "--preset", "tiny", "--profile", str(tmp_path / "missing" / "p.txt"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1


@pytest.mark.slow
def test_large_image_training_preset_runs_on_the_cpu_at_a_small_size(tmp_path):
    """The single-image training preset (the ImageNet config) end to end at 32^2 over chunks of 256 pixels:
    ours alone, train mode, time and peak memory reported (the GPU runs it at 1024^2 and 2048^2)."""
    from perceiver_core.model.layers import kernels

    previous = kernels.get_policy()
    out = tmp_path / "large.json"
    try:
        assert main(["bench", "--backend", "cpu", "--preset", "imagenet-large-train", "--size", "32", "--no-hf",
                     "--steps", "1", "--warmup", "0", "--chunk-keys", "256", "--out", str(out), "--quiet"]) == 0
    finally:
        kernels.set_policy(previous)
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["mode"], row["batch"], row["size"]) == ("train", 1, 32)
    assert row["ours"]["median_step_s"] > 0 and row["ours"]["peak_memory_bytes"] > 0


def test_bench_times_both_residual_streams_interleaved(tmp_path, monkeypatch, capsys):
    """--residual-dtype float32,bfloat16: one case runs both variants of ours (and HF once) step by step; a row per
    variant, the same model FLOPs, the bf16-over-fp32 ratio in the table; each variant's model really has its
    stream (the encoder's config), and bfloat16 without bf16 autocast is refused in one line."""
    from perceiver_core.commands.bench import runner

    built = []
    original = runner.build_ours
    monkeypatch.setattr(runner, "build_ours", lambda *a, **k: built.append(k.get("overrides")) or original(*a, **k))
    monkeypatch.setattr(runner, "matmul_peak", lambda *a, **k: 1e11)
    out = tmp_path / "residual.json"
    assert main(["bench", "--backend", "cpu", "--precision", "bf16", "--preset", "tiny", "--batch", "2",
                 "--modes", "train", "--steps", "2", "--warmup", "0", "--no-hf", "--residual-dtype",
                 "float32,bfloat16", "--profile", str(tmp_path / "p.txt"), "--out", str(out), "--quiet"]) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [r["residual_dtype"] for r in report["rows"]] == ["float32", "bfloat16"]
    a, b = (r["ours"] for r in report["rows"])
    assert a["flops_per_step"] == b["flops_per_step"] > 0 and len(a["times"]) == len(b["times"]) == 2
    (ratio,) = report["residual_ratios"]
    assert ratio["ratio"] == pytest.approx(b["images_per_s"] / a["images_per_s"])
    assert "bf16 vs fp32 residual stream, train batch 2 16^2" in table and "bfloat16 residual" in table
    assert {o["encoder"]["residual_dtype"] for o in built} == {"float32", "bfloat16"}
    assert "bfloat16 residual]" in (tmp_path / "p.txt").read_text()
    assert main(["bench", "--backend", "cpu", "--precision", "fp32", "--preset", "tiny", "--residual-dtype",
                 "bfloat16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "needs bf16 autocast" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["bench", "--residual-dtype", "float16"])
