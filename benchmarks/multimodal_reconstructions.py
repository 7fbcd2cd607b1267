"""A picture of a trained `digits-label` model (docs/multimodal.md): test digits, their reconstruction from the
packed image + label input, and the label read back although it was hidden behind its mask token.

    perceiver train digits-label --out runs/digits-label
    python benchmarks/multimodal_reconstructions.py runs/digits-label --out docs/img/digits_label.png
"""

from __future__ import annotations

import argparse

import torch

from perceiver_core import from_checkpoint
from perceiver_core.data.loader import collate
from perceiver_core.model.pipeline import build_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default="digits_label.png")
    parser.add_argument("--count", type=int, default=12)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = from_checkpoint(args.checkpoint)  # eval: the label is hidden (eval_mask_probability 1.0)
    examples = build_dataset(model.spec).examples("test")
    picked = [examples[i] for i in range(args.count)]
    batch = collate([model.prepare(e) for e in picked])
    with torch.no_grad():
        out = model(batch)
    probs = out["label"][:, 0].softmax(-1)
    fig, axes = plt.subplots(2, args.count, figsize=(1.2 * args.count, 2.9))
    for i, example in enumerate(picked):
        axes[0, i].imshow(batch["image.pixels"][i].reshape(8, 8), cmap="gray", vmin=-1, vmax=1)
        axes[0, i].set_title(f"label {example['label']}", fontsize=8)
        axes[1, i].imshow(out["image"][i].reshape(8, 8), cmap="gray", vmin=-1, vmax=1)
        k = int(probs[i].argmax())
        colour = "green" if k == example["label"] else "red"
        axes[1, i].set_title(f"read {k} ({probs[i, k]:.2f})", fontsize=8, color=colour)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel("decoded", fontsize=8)
    fig.suptitle("digits-label: image reconstructed, hidden label read back", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
