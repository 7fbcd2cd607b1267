"""stereo-tiny against baselines on the held-out part of scikit-image's Middlebury motorcycle pair.

    perceiver train stereo-tiny --out runs/stereo-tiny
    python benchmarks/stereo_tiny.py --checkpoint runs/stereo-tiny/model.safetensors [--png docs/stereo-tiny.png]

Rows (end-point error in pixels of the 1/4-size pair, and D1 outliers: error > 3 px and > 5% of the truth):
  zero flow            predict no motion (the flow task's trivial baseline)
  mean disparity       predict the training region's mean disparity everywhere (a constant, honest baseline)
  Perceiver (crops)    stereo-tiny on each 32x48 held-out crop alone (`perceiver evaluate`'s number)
  Perceiver (tiled)    stereo-tiny over the whole pair in overlapping 32x48 tiles, scored on the held-out pixels
  OpenCV StereoBM/SGBM classical block matching on the whole pair, scored on the same pixels (holes filled from
                       the left, as is usual; their coverage before filling is printed)
The crop rows score the 64 held-out crops' pixels; the whole-pair rows score every known pixel of the held-out
columns. Needs opencv-python-headless (pip install 'perceiver-image[bench]'), a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from perceiver_core import collate, from_checkpoint
from perceiver_core.model.pipeline import build_dataset
from perceiver_image.flow.stereo import downscale, load_motorcycle


def scores(pred: np.ndarray, true: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(EPE, D1) of disparity maps over valid pixels (for stereo the flow's error is the disparity's)."""
    err = np.abs(pred - true)[valid]
    return float(err.mean()), float(((err > 3) & (err > 0.05 * np.abs(true[valid]))).mean())


def fill_from_left(d: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Replace unknown disparities by the nearest known one to their left (to the right at a row's start)."""
    out = d.copy()
    for y in range(d.shape[0]):
        row, ok = out[y], known[y]
        if not ok.any():
            row[:] = 0
            continue
        last = row[np.argmax(ok)]
        for x in range(d.shape[1]):
            if ok[x]:
                last = row[x]
            else:
                row[x] = last
    return out


def opencv_disparities(left: np.ndarray, right: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    import cv2

    l8, r8 = (np.round(v * 255).astype(np.uint8) for v in (left, right))
    gl, gr = cv2.cvtColor(l8, cv2.COLOR_RGB2GRAY), cv2.cvtColor(r8, cv2.COLOR_RGB2GRAY)
    out = {}
    bm = cv2.StereoBM_create(numDisparities=16, blockSize=7)
    block = 3
    sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=16, blockSize=block, P1=8 * 3 * block ** 2,
                                 P2=32 * 3 * block ** 2, uniquenessRatio=5, mode=cv2.STEREO_SGBM_MODE_HH)
    for name, matcher, a, b in (("OpenCV StereoBM", bm, gl, gr), ("OpenCV StereoSGBM", sgbm, l8, r8)):
        raw = matcher.compute(a, b).astype(np.float32) / 16.0  # fixed point, 4 fractional bits
        known = raw >= 0  # -1 (x16) marks no match
        out[name] = (fill_from_left(raw, known), float(known.mean()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--png", help="write a picture: held-out views, true and predicted disparity")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = from_checkpoint(args.checkpoint).eval()
    spec = model.spec  # the resolved pipeline the checkpoint was trained with
    data = spec["data"].config
    dataset = build_dataset(spec)
    rows = []

    # held-out crops: the model on each crop; the constant baselines on the same pixels
    crops = dataset.examples("test")
    batch = collate([model.prepare(crops[i]) for i in range(len(crops))])
    with torch.no_grad():
        flow = model(batch).float() * model.task.config.flow_scale  # [B, M, 2] px
    true = -batch["flow"][..., 0].numpy()  # disparity [B, H, W]
    valid = batch["valid"].numpy() > 0
    pred = -flow[..., 0].reshape(true.shape).numpy()
    train_region = dataset.regions["train"]
    mean_d = float(-train_region["flow"][..., 0][train_region["valid"]].mean())
    rows.append(("zero flow", "held-out crops", *scores(np.zeros_like(true), true, valid), None))
    rows.append((f"mean disparity ({mean_d:.2f} px)", "held-out crops", *scores(np.full_like(true, mean_d), true, valid),
                 None))
    rows.append(("Perceiver stereo-tiny (each crop alone)", "held-out crops", *scores(pred, true, valid), None))

    # the whole pair: tiled Perceiver and OpenCV, scored on the held-out columns
    left, right, disparity = downscale(*load_motorcycle(), data.scale)
    cut = int(round(left.shape[1] * (1 - data.test_fraction)))
    held = np.zeros(disparity.shape, dtype=bool)
    held[:, cut:] = True
    known = held & np.isfinite(disparity)
    pair = collate([model.prepare({"frames": np.stack([left, right])})])
    with torch.no_grad():
        tiled = -model.predict(pair)[0]["flow"][..., 0]  # [H, W] disparity, tiles of the training size
    truth = np.nan_to_num(disparity)
    rows.append(("zero flow", "held-out columns", *scores(np.zeros_like(truth), truth, known), None))
    rows.append(("Perceiver stereo-tiny (tiled over the pair)", "held-out columns", *scores(tiled, truth, known), None))
    matches = {}
    try:
        matches = opencv_disparities(left, right)
    except ImportError:
        print("(OpenCV rows skipped: pip install opencv-python-headless)")
    for name, (d, coverage) in matches.items():
        rows.append((name, "held-out columns", *scores(d, truth, known), coverage))

    if args.json:
        print(json.dumps([dict(zip(("method", "pixels", "epe", "d1", "coverage"), r)) for r in rows], indent=2))
    else:
        print("| method | scored on | EPE (px) | D1 outliers | matched before filling |\n|---|---|---|---|---|")
        for name, where, epe, d1, coverage in rows:
            print(f"| {name} | {where} | {epe:.3f} | {100 * d1:.1f}% | "
                  f"{'' if coverage is None else f'{100 * coverage:.0f}%'} |")
    if args.png:
        picture(args.png, left, disparity, tiled, matches.get("OpenCV StereoSGBM", (None,))[0], cut)


def picture(path: str, left, truth, tiled, sgbm, cut: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmax = float(np.nanmax(truth))
    panels = [("left view (held-out: right of the line)", left, None), ("true disparity", truth, vmax),
              ("Perceiver stereo-tiny (tiled)", tiled, vmax)]
    if sgbm is not None:
        panels.append(("OpenCV StereoSGBM", sgbm, vmax))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0))
    for ax, (title, image, top) in zip(axes, panels):
        if top is None:
            ax.imshow(image)
        else:
            ax.imshow(np.where(np.isfinite(image), image, np.nan), cmap="magma", vmin=0, vmax=top)
        ax.axvline(cut - 0.5, color="cyan", lw=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
