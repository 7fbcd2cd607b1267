"""Encode once and decode every output point in chunks, against re-running the encoder for every chunk (what
DeepMind's colab and HF's example do), for Perceiver IO's multimodal autoencoder (the `multimodal-kinetics` preset,
scaled down with --frames/--side/--samples so that a CPU runs it). Both decode the same points in the same number
of chunks; outputs are checked equal. Prints a table (seconds of one clip, batch 1, fp32).

    python benchmarks/bench_multimodal_chunks.py                                   # CPU, two clip sizes
    python benchmarks/bench_multimodal_chunks.py --frames 16 --side 224 --samples 30720 --chunks 128   # full size
"""

from __future__ import annotations

import argparse
import time

import torch

from perceiver_core.model.build import build_preset


def clip_model(frames: int, side: int, samples: int):
    sets = [f"inputs.image.preprocessor.grid_shape=[{frames}, {side}, {side}]",
            f"inputs.audio.preprocessor.grid_shape=[{samples}]",
            f"decoder.outputs.image.output_index_shape=[{frames}, {side}, {side}]",
            f"decoder.outputs.audio.output_index_shape=[{samples // 16}]"]
    torch.manual_seed(0)
    return build_preset("multimodal-kinetics", device="cpu", overrides=sets).eval()


def run(frames: int, side: int, samples: int, chunks: int, repeats: int) -> dict:
    model = clip_model(frames, side, samples)
    g = torch.Generator().manual_seed(1)
    batch = {"image.values": torch.randn(1, frames, side, side, 3, generator=g),
             "audio.values": torch.randn(1, samples, 1, generator=g), "label.label": torch.tensor([3])}
    pixels, patches = frames * side * side, samples // 16
    total = pixels + patches + 1
    model.decoder.config.chunk_size = -(-total // chunks)

    def once():
        return model(batch)  # encode once, decode in `chunks` chunks

    def per_chunk():
        outs = {"image": [], "audio": [], "label": []}
        ci, ca = -(-pixels // chunks), -(-patches // chunks)
        for i in range(chunks):
            idx = {"image": torch.arange(i * ci, min((i + 1) * ci, pixels)),
                   "audio": torch.arange(i * ca, min((i + 1) * ca, patches))}
            out = model(batch, output_indices=idx)  # the encoder again, for this chunk's points
            for name in outs:
                outs[name].append(out[name])
        return {"image": torch.cat(outs["image"], 1), "audio": torch.cat(outs["audio"], 1), "label": outs["label"][0]}

    timings = {}
    with torch.no_grad():
        for name, fn in (("encode_once", once), ("re_encode", per_chunk)):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                result = fn()
                best = min(best, time.perf_counter() - start)
            timings[name], timings[name + "_out"] = best, result
    a, b = timings["encode_once_out"], timings["re_encode_out"]
    err = max(((a[k] - b[k]).abs().max() / b[k].abs().max()).item() for k in ("image", "audio", "label"))
    return {"clip": f"{frames}x{side}x{side}, {samples} samples", "inputs": model.context.index_shape[0],
            "points": total, "chunks": chunks, "once": timings["encode_once"], "again": timings["re_encode"],
            "ratio": timings["re_encode"] / timings["encode_once"], "max_rel_diff": err}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--side", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--samples", type=int, nargs="+", default=[3840, 7680])
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = [run(f, s, a, args.chunks, args.repeats) for f, s, a in zip(args.frames, args.side, args.samples)]
    print(f"{'clip':<28} {'inputs':>7} {'points':>8} {'chunks':>6} {'encode once s':>13} {'re-encode s':>11} "
          f"{'ratio':>6} {'max rel diff':>12}")
    for r in rows:
        print(f"{r['clip']:<28} {r['inputs']:>7} {r['points']:>8} {r['chunks']:>6} {r['once']:>13.3f} "
              f"{r['again']:>11.3f} {r['ratio']:>6.2f} {r['max_rel_diff']:>12.2e}")


if __name__ == "__main__":
    main()
