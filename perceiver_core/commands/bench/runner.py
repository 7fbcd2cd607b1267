"""`perceiver bench`: our model and HF's PerceiverForImageClassificationFourier on the same config, interleaved.

For every (mode, batch, input size) of a preset: both models are built with the same architecture, warmed up
outside the timed region, then timed step by step, alternating ours and HF's, on the same random images
(never zeros); the device is synchronised before each clock read. Reported per run: images/s (median step),
FLOPs per image (FlopCounterMode, attention analytic on every device), MFU against the measured matrix-product
peak of the device, peak memory, and our speed as a multiple of HF's. A table is printed; `--out` writes JSON.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
from types import SimpleNamespace
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ...errors import UserError
from ...model.layers.residual import check_residual_dtype
from .flops import count_flops, matmul_peak
from .models import build_hf, build_ours, hf_available, ours_batch, parameter_count
from .presets import PRESETS, RESIDUAL_DTYPES, Preset


@dataclass
class BenchOptions:
    """What to run. None fields take the preset's values."""

    preset: str = "tiny"
    backend: str = "auto"
    precision: str = "auto"
    batches: tuple[int, ...] | None = None
    sizes: tuple[int, ...] | None = None
    modes: tuple[str, ...] | None = None
    steps: int | None = None
    warmup: int | None = None
    hf: bool = True
    compile: bool = False
    compile_mode: str = "regional"
    cuda_graphs: bool = False
    chunk_keys: int | None = None
    activation_checkpointing: bool = False
    residual_dtypes: tuple[str, ...] | None = None  # our encoder's residual stream per variant, timed interleaved
    hf_batches: tuple[int, ...] | None = None
    profile: str | None = None
    profile_steps: int = 3
    seed: int = 0
    out: str | None = None
    log: Callable[[str], None] = field(default=lambda s: None)


def _memory(backend) -> int | None:
    stats = backend.memory_stats()
    for key in ("peak_allocated_bytes", "peak_rss_bytes", "allocated_bytes"):
        if key in stats:
            return int(stats[key])
    return None


def _make_steps(kind: str, model, mode: str, images: torch.Tensor, labels: torch.Tensor, backend, precision: str,
                compile_mode: str | None, cuda_graphs: bool = False):
    """One step of one model: a training step (forward, loss, backward, AdamW) or a no-grad forward."""
    from ...runtime.optim import make_optimizer
    from ...runtime.evaluate import autocast

    device = backend.device()
    if kind != "hf":  # ours (any residual-stream variant)
        batch = {**ours_batch(images), "label": labels}
        if compile_mode:
            from ...model.layers.compile import compile_model

            fwd = compile_model(model, backend.compile_options(), compile_mode)
        else:
            fwd = model

        def forward():
            return model.task.loss(fwd(batch), batch) if mode == "train" else fwd(batch)
    else:
        pixels = images.permute(0, 3, 1, 2).contiguous()  # [B, 3, H, W]

        def forward():
            out = model(inputs=pixels, labels=labels if mode == "train" else None)
            return out.loss if mode == "train" else out.logits

    if mode == "train":
        model.train()
        optimizer = make_optimizer(model, "adamw", 1e-4, 0.01, (0.9, 0.999), device)

        def step():
            with autocast(backend, precision):
                loss = forward()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step
    model.eval()
    if cuda_graphs and kind != "hf" and device.type == "cuda":
        from ...model.layers.cuda_graphs import GraphedInference

        graphed = GraphedInference(fwd, context=lambda: autocast(backend, precision))
        return lambda: graphed(batch)

    def step():
        with torch.no_grad(), autocast(backend, precision):
            forward()
    return step


def _residual(preset: Preset, kind: str) -> str:
    """The residual stream dtype of our model run as `kind` ("ours:bfloat16"; plain "ours": the preset's)."""
    return kind.split(":", 1)[1] if ":" in kind else preset.sections["encoder"].get("residual_dtype", "float32")


def _run_case(preset: Preset, opts: BenchOptions, backend, mode: str, batch: int, size: int,
              steps: int, warmup: int, peak: float, with_hf: bool = True,
              hf_alone: bool = False) -> list[dict[str, Any]]:
    """One (mode, batch, size): our model (one run per residual-stream variant) and HF's, interleaved step by
    step. Returns one row per variant of ours (each with the same HF run beside it), or HF's row alone."""
    device = backend.device()
    g = torch.Generator().manual_seed(opts.seed)
    images = torch.rand(batch, size, size, 3, generator=g).to(device)  # [B, H, W, 3], never zeros
    labels = torch.randint(0, preset.num_classes, (batch,), generator=g).to(device)
    ours_kinds = [f"ours:{v}" for v in opts.residual_dtypes] if opts.residual_dtypes else ["ours"]
    kinds = ["hf"] if hf_alone else ours_kinds + (["hf"] if with_hf and opts.hf and preset.hf is not None else [])

    def build(kind: str, counting: bool = False):
        torch.manual_seed(opts.seed)
        if kind == "hf":
            return build_hf(preset, size).to(device)
        encoder: dict[str, Any] = {"residual_dtype": _residual(preset, kind)}
        if opts.activation_checkpointing and not counting:
            # Model FLOPs: recomputation under activation checkpointing is work MFU does not credit.
            encoder["activation_checkpointing"] = True
        return build_ours(preset, size, overrides={"encoder": encoder}).to(device)

    models, step_fns, results, counts = {}, {}, {}, {}
    for kind in kinds:
        # FLOPs per image, counted on a plain (uncompiled) copy at a batch of at most 2, outside the timed region:
        # a compiled region first run under a dispatch mode (the op counter) is never compiled afterwards, and
        # FLOPs are linear in the batch. The residual stream's dtype changes no FLOP: ours is counted once.
        model_kind = "hf" if kind == "hf" else "ours"
        count_batch = min(batch, 2)
        if model_kind not in counts:
            counter_model = build(kind, counting=True)
            flop_fn = _make_steps(model_kind, counter_model, mode, images[:count_batch], labels[:count_batch],
                                  backend, opts.precision, None)
            counts[model_kind] = count_flops(flop_fn, counter_model if model_kind == "ours" else None,
                                             backward=mode == "train")
            del counter_model, flop_fn
            gc.collect()
        counted = counts[model_kind]
        results[kind] = {"flops_per_step": counted["total"] * batch // count_batch,
                         "attention_flops_per_step": counted["attention"] * batch // count_batch}
    for kind in kinds:
        models[kind] = build(kind)
        step_fns[kind] = _make_steps(kind, models[kind], mode, images, labels, backend, opts.precision,
                                     opts.compile_mode if opts.compile and kind != "hf" else None,
                                     cuda_graphs=opts.cuda_graphs)
        results[kind].update({"params": parameter_count(models[kind]), "times": [], "peak_memory_bytes": None})
    for kind in kinds:  # warm-up: compilation, autotuning, allocator
        start = time.perf_counter()
        for _ in range(warmup):
            step_fns[kind]()
        backend.synchronize()
        results[kind]["warmup_s"] = time.perf_counter() - start
    for kind in kinds:
        backend.reset_peak_memory()
        step_fns[kind]()
        backend.synchronize()
        results[kind]["peak_memory_bytes"] = _memory(backend)
    for i in range(steps):  # interleaved: ours (each variant), HF, ours, HF ...
        for kind in kinds:
            backend.synchronize()
            start = time.perf_counter()
            step_fns[kind]()
            backend.synchronize()
            results[kind]["times"].append(time.perf_counter() - start)
        opts.log(f"  {mode} batch {batch} size {size}: step {i + 1}/{steps}")
    if opts.profile:  # after the timed steps: the profiler's overhead is not in the times
        from .profile import profile_steps

        for kind in kinds:
            if kind != "hf":
                results[kind]["profile"] = profile_steps(step_fns[kind], opts.profile_steps, device)
    for kind in kinds:
        r = results[kind]
        median = statistics.median(r["times"])
        r["median_step_s"] = median
        r["images_per_s"] = batch / median
        r["flops_per_image"] = r["flops_per_step"] / batch
        r["tflops_per_s"] = r["flops_per_step"] / median / 1e12
        r["mfu"] = r["flops_per_step"] / median / peak if peak else None
    rows = []
    for kind in (["hf"] if hf_alone else ours_kinds):
        row: dict[str, Any] = {"mode": mode, "batch": batch, "size": size, "steps": steps}
        if kind != "hf":
            row["residual_dtype"] = _residual(preset, kind)
            row["ours"] = results[kind]
        if "hf" in results:
            row["hf"] = results["hf"]
        if "hf" in row and "ours" in row:
            row["speedup_vs_hf"] = row["ours"]["images_per_s"] / row["hf"]["images_per_s"]
        rows.append(row)
    del models, step_fns
    gc.collect()
    return rows


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    from ...model.layers import kernels
    from ...runtime.backends import select_backend

    preset = PRESETS.get(opts.preset)
    if preset is None:
        raise UserError(f"unknown bench preset {opts.preset!r}; presets: {', '.join(PRESETS)}")
    if opts.hf and preset.hf is not None:
        ok, reason = hf_available()
        if not ok:
            opts.log(f"note: no HF comparison: {reason}")
            opts.hf = False
    backend = select_backend(opts.backend)
    device = backend.device()
    dtype = backend.autocast_dtype(opts.precision) or torch.float32
    for residual in opts.residual_dtypes or ():
        if residual not in RESIDUAL_DTYPES:
            raise UserError(f"unknown residual dtype {residual!r}; use {' or '.join(RESIDUAL_DTYPES)}")
        check_residual_dtype(SimpleNamespace(residual_dtype=residual), backend.autocast_dtype(opts.precision))
    if opts.compile and not backend.should_compile(True):
        raise UserError(f"backend {backend.name!r} does not compile models; drop --compile")
    if opts.chunk_keys is not None:
        kernels.set_policy(kernels.get_policy().with_(chunk_keys=opts.chunk_keys, chunk_min_keys=opts.chunk_keys,
                                                      train_chunk_min_keys=opts.chunk_keys))
    peak = matmul_peak(device, dtype)
    batches = opts.batches or preset.batches
    sizes = opts.sizes or preset.sizes or (preset.image_size,)
    modes = opts.modes or preset.modes
    steps, warmup = opts.steps or preset.steps, opts.warmup if opts.warmup is not None else preset.warmup
    rows = []
    for mode in modes:
        for size in sizes:
            for batch in batches:
                opts.log(f"{preset.name}: {mode}, batch {batch}, {size}x{size}")
                case = None
                for with_hf in (True, False):  # HF out of memory: our model alone
                    try:
                        case = _run_case(preset, opts, backend, mode, batch, size, steps, warmup, peak, with_hf)
                        if not with_hf and opts.hf and preset.hf is not None:
                            for row in case:
                                row["hf_error"] = "out of memory"
                        break
                    except torch.OutOfMemoryError:
                        gc.collect()
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                rows.extend(case or [{"mode": mode, "batch": batch, "size": size, "error": "out of memory"}])
    hf_sweep = []
    hf_batches = opts.hf_batches if opts.hf_batches is not None else preset.hf_batches
    if opts.hf and preset.hf is not None and hf_batches:  # HF alone at each batch: its own best, not only ours'
        for mode in modes:
            for size in sizes:
                for batch in sorted(hf_batches):
                    opts.log(f"{preset.name}: HF alone, {mode}, batch {batch}, {size}x{size}")
                    try:
                        (row,) = _run_case(preset, opts, backend, mode, batch, size, steps, warmup, peak,
                                           hf_alone=True)
                    except torch.OutOfMemoryError:
                        gc.collect()
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        hf_sweep.append({"mode": mode, "batch": batch, "size": size, "error": "out of memory"})
                        break  # larger batches will not fit either
                    hf_sweep.append(row)
    later = matmul_peak(device, dtype)
    if later > peak:  # a busy machine at the start: re-derive MFU from the better peak
        for row in rows + hf_sweep:
            for kind in ("ours", "hf"):
                if kind in row and row[kind].get("mfu") is not None:
                    row[kind]["mfu"] *= peak / later
        peak = later
    scaling = size_scaling(rows)
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    report = {"preset": preset.name, "description": preset.description, "backend": backend.name,
              "device": _device_name(device), "precision": opts.precision, "dtype": str(dtype).removeprefix("torch."),
              "compile": opts.compile and opts.compile_mode, "cuda_graphs": opts.cuda_graphs,
              "activation_checkpointing": opts.activation_checkpointing,
              "residual_dtypes": list(opts.residual_dtypes) if opts.residual_dtypes else None,
              "chunk_keys": opts.chunk_keys, "peak_flops": peak, "peak_source": f"measured {str(dtype)[6:]} matmul",
              "torch": torch.__version__, "transformers": hf_version, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "rows": rows, "hf_sweep": hf_sweep,
              "best_vs_best": best_vs_best(rows + hf_sweep), "residual_ratios": residual_ratios(rows),
              "scaling": scaling}
    if opts.profile:
        write_profiles(report, opts.profile)
    if opts.out:
        with open(opts.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return report


def best_vs_best(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (mode, size): our best images/s over the batches run and HF's best over its runs (beside ours and
    alone), and their ratio: the comparison that does not depend on the batch one model happens to prefer."""
    out = []
    for key in sorted({(r["mode"], r["size"]) for r in rows}):
        best: dict[str, tuple[float, int, str | None]] = {}
        for r in rows:
            if (r["mode"], r["size"]) != key:
                continue
            for kind in ("ours", "hf"):
                if kind in r and (kind not in best or r[kind]["images_per_s"] > best[kind][0]):
                    best[kind] = (r[kind]["images_per_s"], r["batch"], r.get("residual_dtype"))
        if "ours" in best and "hf" in best:
            out.append({"mode": key[0], "size": key[1], "ours_batch": best["ours"][1],
                        "ours_residual_dtype": best["ours"][2], "ours_images_per_s": best["ours"][0],
                        "hf_batch": best["hf"][1], "hf_images_per_s": best["hf"][0],
                        "ratio": best["ours"][0] / best["hf"][0]})
    return out


def residual_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (mode, batch, size) timed with both residual streams (interleaved in one case): bf16 over fp32."""
    out = []
    for key in sorted({(r["mode"], r["batch"], r["size"]) for r in rows if "ours" in r}):
        rate = {r.get("residual_dtype"): r["ours"]["images_per_s"] for r in rows
                if "ours" in r and (r["mode"], r["batch"], r["size"]) == key}
        if "float32" in rate and "bfloat16" in rate:
            out.append({"mode": key[0], "batch": key[1], "size": key[2], "float32_images_per_s": rate["float32"],
                        "bfloat16_images_per_s": rate["bfloat16"], "ratio": rate["bfloat16"] / rate["float32"]})
    return out


def write_profiles(report: dict[str, Any], path: str) -> None:
    """The grouped kernel (CUDA) or operator (CPU) table of every run that was profiled, one after another."""
    from .profile import format_profile

    parts = []
    for row in report["rows"]:
        prof = row.get("ours", {}).get("profile")
        if prof is not None:
            residual = f", {row['residual_dtype']} residual" if report.get("residual_dtypes") else ""
            parts.append(format_profile(prof, f"{report['preset']} {row['mode']} batch {row['batch']} "
                                              f"{row['size']}^2 on {report['device']} [{report['dtype']}"
                                              f"{', compiled' if report['compile'] else ''}{residual}]"))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts) + "\n")


def power_fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """How y grows with x: the log-log slope of y, and alpha of the best fit y = a + b x^alpha (a >= 0: a fixed
    cost, e.g. the latent transformer, plus a part that grows with the input; alpha = 1 is linear growth)."""
    import math

    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    best = None
    for step in range(0, 251):
        alpha = 0.5 + step * 0.01  # 0.50 .. 3.00
        zs = [x ** alpha for x in xs]
        mz, mean_y = sum(zs) / len(zs), sum(ys) / len(ys)
        var = sum((z - mz) ** 2 for z in zs)
        b = sum((z - mz) * (y - mean_y) for z, y in zip(zs, ys)) / var if var else 0.0
        a = mean_y - b * mz
        if a < 0:
            a, b = 0.0, sum(z * y for z, y in zip(zs, ys)) / sum(z * z for z in zs)
        err = sum(((a + b * z) - y) ** 2 / y ** 2 for z, y in zip(zs, ys))  # relative residuals
        if best is None or err < best[0]:
            best = (err, alpha, a, b)
    return {"loglog_slope": slope, "alpha": best[1], "fixed": best[2], "per_input": best[3],
            "rms_rel_residual": math.sqrt(best[0] / len(xs))}


def size_scaling(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For a sweep over input sizes (one mode and batch): how time and peak memory grow with the inputs."""
    ok = [r for r in rows if "error" not in r and r["mode"] == "infer"]
    if len({r["size"] for r in ok}) < 3 or len({r["batch"] for r in ok}) != 1:  # one batch size, >= 3 sizes
        return {}
    inputs = [float(r["size"] ** 2) for r in ok]
    out: dict[str, Any] = {"inputs": inputs, "time": power_fit(inputs, [r["ours"]["median_step_s"] for r in ok])}
    mem = [r["ours"].get("peak_memory_bytes") for r in ok]
    if all(mem):
        out["memory"] = power_fit(inputs, [float(m) for m in mem])
    return out


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def format_table(report: dict[str, Any]) -> str:
    gib = 2**30
    head = (f"{'mode':<6}{'batch':>6}{'size':>6}  {'ours img/s':>10}{'HF img/s':>10}{'x HF':>7}"
            f"{'ours MFU':>9}{'HF MFU':>8}{'GFLOP/img':>10}{'ours mem':>10}{'HF mem':>9}")
    lines = [f"{report['preset']} on {report['device']} [{report['backend']}, {report['dtype']}"
             f"{', compiled' if report['compile'] else ''}{', CUDA graphs' if report.get('cuda_graphs') else ''}]; MFU vs {report['peak_flops'] / 1e12:.2f} TFLOP/s "
             f"({report['peak_source']})", head]

    def mem(r):
        return f"{r['peak_memory_bytes'] / gib:.2f}G" if r and r.get("peak_memory_bytes") else "-"

    for row in report["rows"]:
        if "error" in row:
            lines.append(f"{row['mode']:<6}{row['batch']:>6}{row['size']:>6}  {row['error']}")
            continue
        ours, hf = row["ours"], row.get("hf")
        lines.append(
            f"{row['mode']:<6}{row['batch']:>6}{row['size']:>6}  {ours['images_per_s']:>10.2f}"
            f"{(hf['images_per_s'] if hf else float('nan')):>10.2f}{row.get('speedup_vs_hf', float('nan')):>7.2f}"
            f"{(ours['mfu'] or 0) * 100:>8.1f}%{((hf['mfu'] or 0) * 100 if hf else float('nan')):>7.1f}%"
            f"{ours['flops_per_image'] / 1e9:>10.2f}{mem(ours):>10}{mem(hf):>9}"
            + (f"  {row['residual_dtype']} residual" if report.get("residual_dtypes") else "")
            + (f"  (HF: {row['hf_error']})" if row.get("hf_error") else ""))
    sweep = report.get("hf_sweep") or []
    if sweep:
        lines.append("HF alone: " + ", ".join(
            f"{r['mode']} batch {r['batch']} {r['size']}^2: "
            + (r["error"] if "error" in r else f"{r['hf']['images_per_s']:.2f} img/s ({mem(r['hf'])})")
            for r in sweep))
    for r in report.get("residual_ratios") or []:
        lines.append(f"bf16 vs fp32 residual stream, {r['mode']} batch {r['batch']} {r['size']}^2: "
                     f"{r['bfloat16_images_per_s']:.2f} / {r['float32_images_per_s']:.2f} img/s = {r['ratio']:.3f}x")
    for b in report.get("best_vs_best") or []:
        residual = f", {b['ours_residual_dtype']} residual" if report.get("residual_dtypes") else ""
        lines.append(f"best vs best, {b['mode']} {b['size']}^2: ours {b['ours_images_per_s']:.2f} img/s (batch "
                     f"{b['ours_batch']}{residual}) / HF {b['hf_images_per_s']:.2f} img/s (batch {b['hf_batch']}) = "
                     f"{b['ratio']:.2f}x")
    for what, fit in report.get("scaling", {}).items():
        if what == "inputs":
            continue
        lines.append(f"{what} vs inputs ({min(report['scaling']['inputs']):.0f}..{max(report['scaling']['inputs']):.0f}):"
                     f" log-log slope {fit['loglog_slope']:.2f}; fit a + b*M^alpha: alpha = {fit['alpha']:.2f} "
                     f"(rms relative residual {fit['rms_rel_residual']:.1%})")
    return "\n".join(lines)
