"""audio-words (spoken digits synthesised with eSpeak NG, test voices unseen in training) against a simple baseline,
in one sitting on the same machine.

    python benchmarks/audio_words.py --seeds 0 1 2 [--jobs 3] [--pipeline audio-words] [--out runs/bench-audio-words]

Rows:
  MFCC means + logistic regression   13 MFCCs (of the same 40-band log-mel, 25 ms / 10 ms frames) averaged over the
                                     clip, standardised, scikit-learn's LogisticRegression (lbfgs); deterministic
  MFCC means+stds + logistic reg.    the same with the 13 standard deviations appended (26 features)
  PIPELINE (seed s)                  `perceiver train PIPELINE --set train.seed=s`: test accuracy at the end of
                                     training and the wall time of the whole run (data loading, evaluations,
                                     checkpoints included)
--jobs N trains N seeds at once in separate processes (one torch thread each unless OMP_NUM_THREADS says
otherwise): faster on a shared machine, and each run's wall time is then measured while the others run.
Needs scikit-learn (pip install 'perceiver-audio[bench]'). Times are wall-clock on this machine as it was loaded.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from perceiver_core import build_dataset, load_registry, train
from perceiver_audio.clip import example_waveform
from perceiver_audio.spectrogram import mfcc


def mfcc_features(split, sample_rate: int, with_std: bool) -> tuple[np.ndarray, np.ndarray]:
    feats = []
    for i in range(0, len(split), 256):
        waves = torch.stack([example_waveform(split[j], sample_rate) for j in range(i, min(i + 256, len(split)))])
        m = mfcc(waves, sample_rate, n_mfcc=13, n_mels=40)  # [b, frames, 13]
        parts = [m.mean(1)] + ([m.std(1)] if with_std else [])
        feats.append(torch.cat(parts, dim=1).numpy())
    return np.concatenate(feats), np.asarray(split.labels)


def baseline(dataset, sample_rate: int, with_std: bool) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    x_train, y_train = mfcc_features(dataset.examples("train"), sample_rate, with_std)
    x_test, y_test = mfcc_features(dataset.examples("test"), sample_rate, with_std)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, y_train)
    accuracy = float((model.predict(x_test) == y_test).mean())
    return accuracy, time.perf_counter() - started


def train_seed(pipeline: str, overrides: list[str], seed: int, out: str) -> dict:
    """One `perceiver train` run (in its own process with --jobs): test accuracy, steps and wall time."""
    spec = load_registry().resolve(pipeline, [*overrides, f"train.seed={seed}"])
    started = time.perf_counter()
    result = train(spec, f"{out}/seed{seed}", overwrite=True, progress=False)
    return {"model": f"{pipeline} (Perceiver IO)", "seed": seed, "accuracy": result["accuracy"],
            "seconds": time.perf_counter() - started, "steps": result["step"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="audio-words")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/bench-audio-words")
    parser.add_argument("--set", action="append", default=[], help="override a pipeline value (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once, in separate processes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    registry = load_registry()
    spec = registry.resolve(args.pipeline, list(args.set))
    dataset = build_dataset(spec)  # prepares the clips on first use
    rate = int(dataset.info()["sample_rate"])
    rows = []
    for with_std in (False, True):
        acc, secs = baseline(dataset, rate, with_std)
        rows.append({"model": "MFCC means+stds + logistic regression" if with_std else
                     "MFCC means + logistic regression", "seed": None, "accuracy": acc, "seconds": secs})
    if args.jobs > 1:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows += list(pool.map(train_seed, *zip(*[(args.pipeline, args.set, s, args.out) for s in args.seeds])))
    else:
        rows += [train_seed(args.pipeline, args.set, s, args.out) for s in args.seeds]
    perceiver = [r for r in rows if r["seed"] is not None]
    summary = {"pipeline": args.pipeline, "rows": rows, "torch": torch.__version__, "machine": platform.machine(),
               "threads": torch.get_num_threads(), "jobs": args.jobs,
               "mean_accuracy": float(np.mean([r["accuracy"] for r in perceiver])) if perceiver else None,
               "mean_seconds": float(np.mean([r["seconds"] for r in perceiver])) if perceiver else None,
               "train": len(dataset.examples("train")), "test": len(dataset.examples("test"))}
    from pathlib import Path

    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "summary.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.pipeline}: {summary['train']:,} training clips, {summary['test']:,} test clips (unseen voices); "
          f"torch {torch.__version__}, {args.jobs} run(s) at once")
    print(f"| {'model':<40} | {'seed':>4} | {'test accuracy':>13} | {'wall time':>9} |")
    print(f"|{'-' * 42}|{'-' * 6}|{'-' * 15}|{'-' * 11}|")
    for r in rows:
        seed = "" if r["seed"] is None else str(r["seed"])
        print(f"| {r['model']:<40} | {seed:>4} | {100 * r['accuracy']:>12.2f}% | {r['seconds']:>8.1f}s |")
    if perceiver:
        print(f"| {'mean of ' + str(len(perceiver)) + ' seeds':<40} | {'':>4} | "
              f"{100 * summary['mean_accuracy']:>12.2f}% | {summary['mean_seconds']:>8.1f}s |")


if __name__ == "__main__":
    main()
