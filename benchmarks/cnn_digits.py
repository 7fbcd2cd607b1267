"""Baseline: a small CNN on the digits pipeline's data, with and without the pixel permutation.

The Perceiver sees pixels as a set of (value, position) pairs, so a fixed permutation of the pixels changes
nothing for it; a CNN's convolutions rely on neighbouring pixels being neighbours in the array, so it drops.
Same data, same fixed split and the same permutation as `image.pixels` with `permute_seed = 0`.

    python benchmarks/cnn_digits.py [--seeds 3] [--epochs 30] [--out cnn_digits.json]

Prints a table (mean and spread of test accuracy over seeds) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from perceiver_image.configs import DigitsConfig
from perceiver_image.digits import DigitsDataset


class SmallCNN(nn.Module):
    """conv3x3(32) - conv3x3(64) - maxpool - conv3x3(64) - global pool - linear: about 56k parameters."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, 1, 8, 8]
        x = F.relu(self.c1(x))
        x = F.max_pool2d(F.relu(self.c2(x)), 2)  # [B, 64, 4, 4]
        x = F.relu(self.c3(x)).mean(dim=(2, 3))  # [B, 64]
        return self.head(x)


def tensors(split, permutation):
    images = torch.tensor(split.image).reshape(len(split), 64)  # [N, 64] in [0, 1]
    if permutation is not None:
        images = images[:, permutation]
    return ((images - 0.5) / 0.5).reshape(-1, 1, 8, 8), torch.tensor(split.labels)


def run(seed: int, permuted: bool, epochs: int) -> float:
    dataset = DigitsDataset(DigitsConfig())
    # the permutation image.pixels uses for permute_seed = 0
    permutation = torch.randperm(64, generator=torch.Generator().manual_seed(0)) if permuted else None
    xtr, ytr = tensors(dataset.examples("train"), permutation)
    xte, yte = tensors(dataset.examples("test"), permutation)
    torch.manual_seed(seed)
    model = SmallCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    steps = epochs * ((len(xtr) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xtr), generator=g).split(64):
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        return (model(xte).argmax(-1) == yte).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="cnn_digits.json")
    args = parser.parse_args()
    rows = []
    for permuted in (False, True):
        start = time.perf_counter()
        accs = [run(seed, permuted, args.epochs) for seed in range(args.seeds)]
        rows.append({"model": "SmallCNN", "pixels": "permuted" if permuted else "ordered", "seeds": args.seeds,
                     "mean_accuracy": statistics.mean(accs), "min": min(accs), "max": max(accs),
                     "accuracies": accs, "seconds": round(time.perf_counter() - start, 1)})
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "rows": rows}, f, indent=2)
    print(f"{'model':<10} {'pixels':<9} {'mean acc':>9} {'min':>7} {'max':>7} {'seconds':>8}")
    for r in rows:
        print(f"{r['model']:<10} {r['pixels']:<9} {r['mean_accuracy']:>9.4f} {r['min']:>7.4f} {r['max']:>7.4f} "
              f"{r['seconds']:>8}")
    drop = rows[0]["mean_accuracy"] - rows[1]["mean_accuracy"]
    print(f"drop under permutation: {drop * 100:.1f} points")


if __name__ == "__main__":
    main()
