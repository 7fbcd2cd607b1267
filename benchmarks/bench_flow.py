"""Optical-flow inference, ours (`flow-sintel`) beside HF transformers' PerceiverForOpticalFlow of the same config,
interleaved in one run (issue 13's GPU figure): a frame pair at the training size (368 x 496, one pass) and at
Sintel's 1024 x 436 (overlapping tiles of the training size, blended by distance to the edge; both models go
through the same `tiled_apply`, 6 tiles in one batch). Median time of --steps passes after --warmup, peak memory.

    python benchmarks/bench_flow.py --backend cuda --compile --out flow.json           # the GPU figure
    python benchmarks/bench_flow.py --backend cpu --tiny --steps 1 --warmup 0           # seconds: does it run

--tiny shrinks both models alike (64 x 64 latents, 2 self-attends, 46 x 62 tiles, frames 46x62 and 128x54) so the
script is checked end to end on a CPU; its figures say nothing. Both models take the same pre-extracted patches
[B, 2, 27, H, W] (HF's input form); ours also accepts raw frames. Inputs are random, never zeros.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

TINY = ["encoder.num_latents=64", "encoder.latent_channels=64", "encoder.self_attends_per_block=2",
        "encoder.self_attend_heads=4", "data.image_shape=[46, 62, 3]", "position.max_resolution=[46, 62]"]


def _sizes(text: str) -> list[tuple[int, int]]:
    """'368x496,436x1024' -> [(368, 496), (436, 1024)] (height x width)."""
    out = []
    for part in text.split(","):
        h, w = part.lower().split("x")
        out.append((int(h), int(w)))
    return out


def build_models(args, device):
    from perceiver_core import build_preset

    sets = (TINY if args.tiny else []) + args.set
    ours = build_preset("flow-sintel", device="cpu", overrides=sets).to(device).eval()
    enc = ours.spec["encoder"].config
    tile = tuple(ours.preprocessor.index_shape)  # the training size: the tile
    hf = None
    if not args.no_hf:
        import transformers

        config = transformers.PerceiverConfig(
            num_latents=enc.num_latents, d_latents=enc.latent_channels, num_blocks=enc.num_blocks,
            num_self_attends_per_block=enc.self_attends_per_block, num_self_attention_heads=enc.self_attend_heads,
            num_cross_attention_heads=enc.cross_attend_heads, train_size=list(tile))
        torch.manual_seed(0)
        hf = transformers.PerceiverForOpticalFlow(config).to(device).eval()
    return ours, hf, tile


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--sizes", type=_sizes, help="frame sizes HxW (default: the tile and Sintel's 436x1024)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--tile-batch", type=int, default=8, help="tiles run at once (Sintel's 1024x436 is 6 tiles)")
    p.add_argument("--compile", action="store_true", help="regional torch.compile of our attention blocks")
    p.add_argument("--no-hf", action="store_true")
    p.add_argument("--tiny", action="store_true", help="both models shrunk alike (a CPU check that it runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override of our preset")
    p.add_argument("--out")
    args = p.parse_args(argv)

    from perceiver_core.runtime.backends import select_backend
    from perceiver_core.runtime.evaluate import autocast
    from perceiver_image.flow.tiling import tiled_apply

    backend = select_backend(args.backend)
    device = backend.device()
    ours, hf, tile = build_models(args, device)
    if args.compile and backend.should_compile(True):
        from perceiver_core.model.layers.compile import compile_model

        compile_model(ours, backend.compile_options(), "regional")
    overlap = ours.task.config.tile_overlap
    sizes = args.sizes or [tile, (54, 128) if args.tiny else (436, 1024)]
    params = {"ours": sum(t.numel() for t in ours.parameters())}
    if hf is not None:
        params["hf"] = sum(t.numel() for t in hf.parameters())

    def runner(kind, patches):
        def one(x):  # x [n, 2, 27, h, w] -> [n, h*w, 2]
            if kind == "ours":
                return ours({"patches": x})
            return hf(inputs=x).logits.reshape(x.shape[0], -1, 2)

        def step():
            with torch.no_grad(), autocast(backend, args.precision):
                return tiled_apply(one, patches, tile, min_overlap=overlap, tile_batch=args.tile_batch)
        return step

    rows = []
    for h, w in sizes:
        g = torch.Generator().manual_seed(0)
        patches = (torch.rand(1, 2, 27, h, w, generator=g) * 2 - 1).to(device)  # [B, 2, 27, H, W] in [-1, 1]
        kinds = ["ours"] + (["hf"] if hf is not None else [])
        steps = {k: runner(k, patches) for k in kinds}
        row = {"height": h, "width": w, "tiles": None}
        outputs = {}
        for k in kinds:
            for _ in range(args.warmup):
                steps[k]()
            backend.synchronize()
            backend.reset_peak_memory()
            outputs[k] = steps[k]().float()
            backend.synchronize()
            stats = backend.memory_stats()
            row[k] = {"times": [], "peak_memory_bytes": stats.get("peak_allocated_bytes", stats.get("peak_rss_bytes"))}
        for _ in range(args.steps):  # interleaved: ours, HF, ours, HF ...
            for k in kinds:
                backend.synchronize()
                start = time.perf_counter()
                steps[k]()
                backend.synchronize()
                row[k]["times"].append(time.perf_counter() - start)
        for k in kinds:
            row[k]["median_s"] = statistics.median(row[k]["times"])
        if "hf" in row:
            row["speedup_vs_hf"] = row["hf"]["median_s"] / row["ours"]["median_s"]
            # same config, different random weights: the outputs are not compared (tests/test_flow_parity.py
            # checks parity with imported weights); shapes must agree
            assert outputs["ours"].shape == outputs["hf"].shape, (outputs["ours"].shape, outputs["hf"].shape)
        from perceiver_image.flow.tiling import tile_starts

        row["tiles"] = len(tile_starts(h, min(tile[0], h), overlap)) * len(tile_starts(w, min(tile[1], w), overlap))
        rows.append(row)
        print(f"  {h}x{w}: done", file=sys.stderr, flush=True)
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    report = {"device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                         else f"cpu ({platform.processor() or platform.machine()})"),
              "backend": backend.name, "precision": args.precision, "compile": args.compile, "tiny": args.tiny,
              "tile": list(tile), "params": params, "torch": torch.__version__, "transformers": hf_version,
              "rows": rows}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    gib = 2 ** 30
    print(f"flow-sintel{' (tiny)' if args.tiny else ''} inference on {report['device']} [{backend.name}, "
          f"{args.precision}{', compiled' if args.compile else ''}]; params ours {params['ours']:,}"
          + (f", HF {params['hf']:,}" if "hf" in params else ""))
    print(f"{'frame HxW':>10}{'tiles':>6}{'ours ms':>9}{'HF ms':>9}{'x HF':>7}{'ours mem':>10}{'HF mem':>9}")
    for r in rows:
        hf_r = r.get("hf")

        def mem(x):
            return f"{x['peak_memory_bytes'] / gib:.2f}G" if x and x.get("peak_memory_bytes") else "-"
        print(f"{r['height']:>5}x{r['width']:<4}{r['tiles']:>6}{r['ours']['median_s'] * 1e3:>9.1f}"
              f"{(hf_r['median_s'] * 1e3 if hf_r else float('nan')):>9.1f}{r.get('speedup_vs_hf', float('nan')):>7.2f}"
              f"{mem(r['ours']):>10}{mem(hf_r):>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
