"""Pictures of a trained HiP masked auto-encoder: for a few test images, the input, what the encoder saw (hidden
pixels grey) and the input with its hidden pixels filled by the reconstruction. Evaluation masks are fixed, so the
picture matches `perceiver evaluate`.

    perceiver train hip-tiny --out runs/hip-tiny
    python benchmarks/hip_reconstructions.py hip-tiny runs/hip-tiny/model.safetensors --out hip-tiny.png
"""

from __future__ import annotations

import argparse

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pipeline")
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="hip-reconstructions.png")
    ap.add_argument("--count", type=int, default=8)
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from perceiver_core.data.loader import collate
    from perceiver_core.model.pipeline import build_dataset
    from perceiver_core.runtime.checkpoint import from_checkpoint

    model = from_checkpoint(args.checkpoint).eval()
    examples = build_dataset(model.spec).examples("test")
    batch = collate([model.prepare(examples[i]) for i in range(args.count)])
    with torch.no_grad():
        outputs = model(batch)
    filled = model.task.fill(outputs)  # [B, M, C]
    mask, target = outputs["mask"], outputs["target"]
    h, w = model.context.index_shape
    pre = model.spec["preprocessor"].config
    mean, std = torch.tensor(pre.mean), torch.tensor(pre.std)

    def image(values):  # [M, C] normalised -> [H, W, C] in [0, 1]
        return (values * std + mean).clamp(0, 1).reshape(h, w, -1).squeeze(-1).numpy()

    fig, axes = plt.subplots(3, args.count, figsize=(1.4 * args.count, 4.4))
    for i in range(args.count):
        seen = target[i].clone()
        seen[mask[i]] = 0.0  # grey in the normalised scale of mean 0.5 / std 0.5
        for row, values in enumerate((target[i], seen, filled[i])):
            axes[row, i].imshow(image(values), cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    for row, title in enumerate(("input", "seen by the encoder", "reconstructed")):
        axes[row, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
