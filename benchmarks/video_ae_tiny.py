"""video-ae-tiny against baselines on the held-out windows of the Big Buck Bunny clip (PSNR, pixels in [0, 1]).

    perceiver train video-ae-tiny --out runs/video-ae-tiny
    python benchmarks/video_ae_tiny.py --checkpoint runs/video-ae-tiny [--png docs/video-ae-tiny.png]

Rows (PSNR in dB per test window, averaged over the windows, as `perceiver evaluate` reports it):
  grey                 every pixel 0.5 (what an untrained, zero-output model gives)
  mean frame           the per-pixel mean of every training frame (the dataset's mean image), for every frame
  window mean frame    each test window's own temporal mean (it sees the test clip: every static part exact,
                       nothing that moves); a strong reference, not a compressor of the same size
  Perceiver            video-ae-tiny: its latents (64 x 128 numbers for 8 x 32 x 56 x 3 = 43,008 pixel values)
                       decoded at every pixel
--png writes the first frames of one held-out window: input above, the model's reconstruction below.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from perceiver_core import collate, from_checkpoint
from perceiver_core.model.pipeline import build_dataset


def psnr(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over clips of the PSNR (dB) of pixels in [0, 1]: pred, true [N, T, H, W, C]."""
    mse = ((pred - true) ** 2).reshape(len(true), -1).mean(1)
    return float((-10 * np.log10(np.maximum(mse, 1e-10))).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a video-ae-tiny run folder or model.safetensors")
    parser.add_argument("--png", help="write input vs reconstruction frames of one held-out window here")
    parser.add_argument("--window", type=int, default=-1, help="which held-out window --png shows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    torch.set_grad_enabled(False)
    model = from_checkpoint(args.checkpoint).eval()
    data = build_dataset(model.spec)
    train, test = data.examples("train"), data.examples(model.spec.train.eval_split)
    true = np.stack([np.asarray(test[i]["video"]) for i in range(len(test))]).astype(np.float32) / 255  # [N, T, H, W, C]
    frames = np.concatenate([np.asarray(train[i]["video"]) for i in range(len(train))]).astype(np.float32) / 255

    recon = []
    for start in range(0, len(test), 8):
        batch = collate([model.prepare(test[i]) for i in range(start, min(len(test), start + 8))])
        outputs = model(batch)  # [B, T*H*W, C]
        recon.append(np.stack([p["reconstruction"] for p in model.task.postprocess(outputs)]))
    recon = np.concatenate(recon).astype(np.float32) / 255

    rows = {
        "grey": psnr(np.full_like(true, 0.5), true),
        "mean frame": psnr(np.broadcast_to(frames.mean(0), true.shape), true),
        "window mean frame": psnr(np.broadcast_to(true.mean(1, keepdims=True), true.shape), true),
        "Perceiver": psnr(recon, true),
    }
    if args.json:
        print(json.dumps({"test_windows": len(test), "psnr_db": {k: round(v, 2) for k, v in rows.items()}}))
    else:
        print(f"held-out windows: {len(test)} of {true.shape[1]} frames at {true.shape[3]}x{true.shape[2]}")
        print(f"{'method':<20} {'PSNR (dB)':>10}")
        for name, value in rows.items():
            print(f"{name:<20} {value:>10.2f}")
    if args.png:
        from perceiver_video.pictures import save_strip

        k = args.window % len(test)
        save_strip(args.png, [np.round(true[k] * 255).astype(np.uint8), np.round(recon[k] * 255).astype(np.uint8)],
                   scale=4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
