"""multimodal-ae-tiny on the held-out windows of Big Buck Bunny: reconstruction PSNR of audio and video against
mean baselines, and label accuracy with the label masked.

    perceiver train multimodal-ae-tiny --out runs/mmae
    python benchmarks/multimodal_ae_tiny.py --checkpoint runs/mmae [runs/mmae-1 ...] [--figures docs/img]

Rows, per modality (PSNR in dB per held-out window, averaged over the windows):
  zero / grey          audio: silence (0); video: every pixel 0.5
  training mean        audio: the mean training sample (per position in the window); video: the per-pixel mean
                       of every training frame, for every frame
  Perceiver            the model's reconstruction from its 64 x 128 latents (the label hidden by its mask token),
                       audio divided by the preprocessor's fixed `scale` (the same number for every window); a
                       model built with normalize = "rms" reads and writes each window at unit RMS, and then the
                       window's gain (one number) is put back before scoring
Audio PSNR is against a peak of 1 (samples in [-1, 1]), video PSNR against pixels in [0, 1].
Label accuracy: the window's part of the clip, read off audio + video (label masked), against the majority class.
--figures DIR writes DIR/multimodal-ae-tiny-frames.png (input frames above, reconstruction below) and
DIR/multimodal-ae-tiny-spectrogram.png (log-mel of the input above, of the reconstruction below).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from perceiver_core import collate, from_checkpoint
from perceiver_core.model.pipeline import build_dataset


def psnr(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over examples of the PSNR (dB) against a peak of 1: pred, true [N, ...]."""
    mse = ((pred - true) ** 2).reshape(len(true), -1).mean(1)
    return float((-10 * np.log10(np.maximum(mse, 1e-10))).mean())


def reconstruct(model, examples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio [N, S], video [N, T, H, W, C] in [0, 1], predicted labels [N]) for raw examples, label masked."""
    video_pre = model.preprocessor["video"]
    audio, video, labels = [], [], []
    for start in range(0, len(examples), 8):
        batch = collate([model.prepare(examples[i]) for i in range(start, min(len(examples), start + 8))])
        out = model(batch)  # eval: the label input is masked (eval_mask_probability = 1)
        audio.append(out["audio"].float().reshape(out["audio"].shape[0], -1).numpy())  # [B, S]
        video.append(video_pre.input_frames({"patches": out["video"].float()}).numpy())  # [B, T, H, W, C]
        labels.append(out["label"][:, 0].argmax(-1).numpy())
    return np.concatenate(audio), np.concatenate(video), np.concatenate(labels)


def score(checkpoint: str, split: str | None) -> dict:
    """One run's rows on `split` (default: the split it evaluates on), and what the figures need."""
    model = from_checkpoint(checkpoint).eval()
    data = build_dataset(model.spec)
    train, test = data.examples("train"), data.examples(split or model.spec.train.eval_split)
    true_audio = np.stack([np.asarray(test[i]["audio"]) for i in range(len(test))]).astype(np.float32)  # [N, S]
    true_video = np.stack([np.asarray(test[i]["video"]) for i in range(len(test))]).astype(np.float32) / 255
    true_label = np.array([test[i]["label"] for i in range(len(test))])
    train_audio = np.stack([np.asarray(train[i]["audio"]) for i in range(len(train))]).astype(np.float32)
    train_frames = np.concatenate([np.asarray(train[i]["video"]) for i in range(len(train))]).astype(np.float32) / 255
    train_labels = np.array([train[i]["label"] for i in range(len(train))])
    audio, video, labels = reconstruct(model, test)
    audio = audio / model.preprocessor["audio"].config.scale  # model units -> samples in [-1, 1]
    if model.preprocessor["audio"].config.normalize == "rms":  # the model hears each window at unit RMS:
        rms = np.sqrt(np.square(true_audio).mean(1, keepdims=True)).clip(1e-5)  # its gain, one number per window
        audio = audio * rms
    audio = np.clip(audio, -1, 1)
    video = np.clip(video, 0, 1)
    rows = {
        "zero / grey": (psnr(np.zeros_like(true_audio), true_audio), psnr(np.full_like(true_video, 0.5), true_video)),
        "training mean": (psnr(np.broadcast_to(train_audio.mean(0), true_audio.shape), true_audio),
                          psnr(np.broadcast_to(train_frames.mean(0), true_video.shape), true_video)),
        "Perceiver": (psnr(audio, true_audio), psnr(video, true_video)),
    }
    majority = int(np.bincount(train_labels).argmax())
    acc = {"Perceiver (label masked)": float((labels == true_label).mean()),
           "majority class": float((true_label == majority).mean())}
    return {"rows": rows, "acc": acc, "windows": len(test), "true_audio": true_audio, "true_video": true_video,
            "audio": audio, "video": video, "rate": int(model.preprocessor["audio"].sample_rate)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, nargs="+",
                        help="multimodal-ae-tiny run folders (several: e.g. one per seed; the mean is printed too)")
    parser.add_argument("--figures", help="write the frames and spectrogram PNGs (of the first run) into this folder")
    parser.add_argument("--window", type=int, default=-1, help="which held-out window the figures show")
    parser.add_argument("--split", help="the windows to score (default: the held-out split the run evaluates on; "
                                         "train shows how well the training windows are fitted)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    torch.set_grad_enabled(False)
    runs = [score(c, args.split) for c in args.checkpoint]
    if args.json:
        print(json.dumps([{"checkpoint": c, "test_windows": r["windows"],
                           "psnr_db": {k: {"audio": round(a, 2), "video": round(v, 2)} for k, (a, v) in r["rows"].items()},
                           "label_accuracy": {k: round(v, 4) for k, v in r["acc"].items()}}
                          for c, r in zip(args.checkpoint, runs)]))
    else:
        first = runs[0]
        t, h, w = first["true_video"].shape[1:4]
        print(f"{args.split or 'held-out'} windows: {first['windows']} (video {t} frames at {w}x{h}, audio "
              f"{first['true_audio'].shape[1]} samples at {first['rate']} Hz)")
        print(f"{'method':<22} {'audio PSNR (dB)':>16} {'video PSNR (dB)':>16} {'label accuracy':>15}")
        for name in ("zero / grey", "training mean"):
            a, v = first["rows"][name]
            print(f"{name:<22} {a:>16.2f} {v:>16.2f} {'':>15}")
        print(f"{'majority class':<22} {'':>16} {'':>16} {first['acc']['majority class']:>15.4f}")
        for c, r in zip(args.checkpoint, runs):
            a, v = r["rows"]["Perceiver"]
            print(f"{Path(c).name[-22:]:<22} {a:>16.2f} {v:>16.2f} {r['acc']['Perceiver (label masked)']:>15.4f}")
        if len(runs) > 1:
            a = np.mean([r["rows"]["Perceiver"][0] for r in runs])
            v = np.mean([r["rows"]["Perceiver"][1] for r in runs])
            acc = np.mean([r["acc"]["Perceiver (label masked)"] for r in runs])
            print(f"{f'mean of {len(runs)}':<22} {a:>16.2f} {v:>16.2f} {acc:>15.4f}")
    if args.figures:
        from perceiver_audio.picture import spectrogram_figure
        from perceiver_video.pictures import save_strip

        r = runs[0]
        folder = Path(args.figures)
        folder.mkdir(parents=True, exist_ok=True)
        k = args.window % r["windows"]
        save_strip(folder / "multimodal-ae-tiny-frames.png",
                   [np.round(r["true_video"][k] * 255).astype(np.uint8), np.round(r["video"][k] * 255).astype(np.uint8)],
                   scale=4)
        spectrogram_figure([("input", r["true_audio"][k]), ("reconstruction", r["audio"][k])], r["rate"],
                           str(folder / "multimodal-ae-tiny-spectrogram.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
