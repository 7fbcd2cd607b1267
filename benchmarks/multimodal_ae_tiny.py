"""multimodal-ae-tiny on the held-out windows of Big Buck Bunny: reconstruction PSNR of audio and video against
mean baselines, and label accuracy with the label masked.

    perceiver train multimodal-ae-tiny --out runs/mmae
    python benchmarks/multimodal_ae_tiny.py --checkpoint runs/mmae [--figures docs/img]

Rows, per modality (PSNR in dB per held-out window, averaged over the windows):
  zero / grey          audio: silence (0); video: every pixel 0.5
  training mean        audio: the mean training sample (per position in the window); video: the per-pixel mean
                       of every training frame, for every frame
  Perceiver            the model's reconstruction from its 64 x 128 latents (the label hidden by its mask token);
                       the model reads and writes each audio window at unit RMS, the window's gain (one number)
                       is put back before scoring
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a multimodal-ae-tiny run folder")
    parser.add_argument("--figures", help="write the frames and spectrogram PNGs into this folder")
    parser.add_argument("--window", type=int, default=-1, help="which held-out window the figures show")
    parser.add_argument("--split", help="the windows to score (default: the held-out split the run evaluates on; "
                                         "train shows how well the training windows are fitted)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    torch.set_grad_enabled(False)
    model = from_checkpoint(args.checkpoint).eval()
    data = build_dataset(model.spec)
    train, test = data.examples("train"), data.examples(args.split or model.spec.train.eval_split)
    true_audio = np.stack([np.asarray(test[i]["audio"]) for i in range(len(test))]).astype(np.float32)  # [N, S]
    true_video = np.stack([np.asarray(test[i]["video"]) for i in range(len(test))]).astype(np.float32) / 255
    true_label = np.array([test[i]["label"] for i in range(len(test))])
    train_audio = np.stack([np.asarray(train[i]["audio"]) for i in range(len(train))]).astype(np.float32)
    train_frames = np.concatenate([np.asarray(train[i]["video"]) for i in range(len(train))]).astype(np.float32) / 255
    train_labels = np.array([train[i]["label"] for i in range(len(train))])
    audio, video, labels = reconstruct(model, test)
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
    if args.json:
        print(json.dumps({"test_windows": len(test), "psnr_db": {k: {"audio": round(a, 2), "video": round(v, 2)}
                                                                 for k, (a, v) in rows.items()},
                          "label_accuracy": {k: round(v, 4) for k, v in acc.items()}}))
    else:
        t, h, w = true_video.shape[1:4]
        print(f"{args.split or 'held-out'} windows: {len(test)} (video {t} frames at {w}x{h}, audio "
              f"{true_audio.shape[1]} samples)")
        print(f"{'method':<16} {'audio PSNR (dB)':>16} {'video PSNR (dB)':>16}")
        for name, (a, v) in rows.items():
            print(f"{name:<16} {a:>16.2f} {v:>16.2f}")
        print(f"{'label':<26} {'accuracy':>9}")
        for name, value in acc.items():
            print(f"{name:<26} {value:>9.4f}")
    if args.figures:
        from perceiver_audio.picture import spectrogram_figure
        from perceiver_video.pictures import save_strip

        folder = Path(args.figures)
        folder.mkdir(parents=True, exist_ok=True)
        k = args.window % len(test)
        save_strip(folder / "multimodal-ae-tiny-frames.png",
                   [np.round(true_video[k] * 255).astype(np.uint8), np.round(video[k] * 255).astype(np.uint8)],
                   scale=4)
        rate = int(model.preprocessor["audio"].sample_rate)
        spectrogram_figure([("input", true_audio[k]), ("reconstruction", audio[k])], rate,
                           str(folder / "multimodal-ae-tiny-spectrogram.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
