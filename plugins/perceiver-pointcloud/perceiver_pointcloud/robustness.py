"""Accuracy of a trained point-cloud classifier on clean, permuted and rotated test clouds (a table).

    python -m perceiver_pointcloud.robustness --checkpoint runs/shapes/model.safetensors [--split test]

Rows: the split as it is; every cloud's points in a random order (with the preprocessor's canonical order, and
with it switched off, so the model's own invariance is measured; the largest logit difference is printed too);
every cloud rotated about the up axis by a random angle. Permutations and angles are seeded per example.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from perceiver_core.errors import UserError

from .geometry import rotation_about


class Transformed(Sequence[Mapping[str, Any]]):
    """A split whose clouds are permuted ("permute") or rotated about `up_axis` ("rotate"), seeded per example."""

    def __init__(self, examples: Sequence[Mapping[str, Any]], how: str, seed: int = 0, up_axis: str = "z"):
        self.examples, self.how, self.seed, self.up_axis = examples, how, seed, up_axis

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        example = dict(self.examples[i])
        rng = np.random.default_rng([self.seed, i])
        points = np.asarray(example["points"], dtype=np.float32)
        normals = example.get("normals")
        if self.how == "permute":
            order = rng.permutation(len(points))
            for key in ("points", "normals", "colors"):
                if example.get(key) is not None:
                    example[key] = np.asarray(example[key])[order]
        elif self.how == "rotate":
            r = rotation_about(self.up_axis, float(rng.uniform(0, 2 * math.pi))).astype(np.float32)
            example["points"] = points @ r.T
            if normals is not None:
                example["normals"] = np.asarray(normals, dtype=np.float32) @ r.T
        return example


def _logits(model, examples: Sequence[Mapping[str, Any]], batch_size: int) -> torch.Tensor:
    from perceiver_core import collate

    out = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate([model.prepare(examples[i]) for i in range(start, min(start + batch_size, len(examples)))])
            out.append(model(batch).float())  # [b, 1, K]
    return torch.cat(out)  # [N, 1, K]


def measure(checkpoint: str, split: str = "test", seed: int = 0, batch_size: int = 64) -> list[dict[str, Any]]:
    from perceiver_core import PipelineSpec, build_dataset, from_checkpoint

    model = from_checkpoint(checkpoint).eval()
    pre = model.preprocessor
    if not hasattr(pre, "config") or not hasattr(pre.config, "canonical_order"):
        raise UserError(f"{checkpoint}: not a point-cloud model (its preprocessor is {type(pre).__name__})")
    spec = model.spec if isinstance(getattr(model, "spec", None), PipelineSpec) else None
    if spec is None:
        raise UserError(f"{checkpoint}: the checkpoint does not record its pipeline")
    examples = build_dataset(spec).examples(split)
    labels = torch.tensor([examples[i]["label"] for i in range(len(examples))])
    up = pre.config.up_axis
    rows = []

    def row(name: str, logits: torch.Tensor, reference: torch.Tensor | None = None) -> None:
        accuracy = (logits[:, 0].argmax(-1) == labels).float().mean().item()
        entry = {"input": name, "accuracy": round(accuracy, 4)}
        if reference is not None:
            entry["max_logit_difference"] = float((logits - reference).abs().max())
        rows.append(entry)

    canonical = pre.config.canonical_order
    clean = _logits(model, examples, batch_size)
    row(f"{split} as generated", clean)
    row("points permuted", _logits(model, Transformed(examples, "permute", seed, up), batch_size), clean)
    if canonical:
        pre.config.canonical_order = False  # the model's own invariance, without the canonical sort
        try:
            plain = _logits(model, examples, batch_size)
            row("points permuted, canonical order off", _logits(model, Transformed(examples, "permute", seed, up),
                                                                batch_size), plain)
        finally:
            pre.config.canonical_order = canonical
    row(f"rotated about {up} (random angle)", _logits(model, Transformed(examples, "rotate", seed, up), batch_size))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perceiver_pointcloud.robustness", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, metavar="FILE")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutations and rotations")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        rows = measure(args.checkpoint, args.split, args.seed)
    except UserError as exc:
        print(f"robustness: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| input | accuracy | max abs logit difference |\n|---|---|---|")
    for r in rows:
        diff = r.get("max_logit_difference")
        print(f"| {r['input']} | {r['accuracy']:.4f} | {'' if diff is None else f'{diff:.2e}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
