"""Predictions as rows for `perceiver predict`: class names and probabilities (top k) when the task is a
classifier, the task's own postprocessing otherwise. Kept apart from the command so the checkpoint-only predict
path can call it too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch


def input_stem(item: str) -> str:
    """A file name for the outputs of one input (FRAME0,FRAME1 -> FRAME0's name; test:3 -> test-3)."""
    first = item.split(",")[0]
    return Path(first).stem if os.path.exists(first) else first.replace(":", "-").replace("/", "_")


@torch.no_grad()
def prediction_rows(model, examples: Sequence[Mapping[str, Any]], inputs: Sequence[str], top_k: int = 1,
                    out_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per input: {"input", "label", "name", "probability", "top": [...] (k > 1)} for classifiers (names
    from the class names the checkpoint keeps), else {"input", **the task's prediction}, where dense predictions
    (flow fields) are written into `out_dir` by `Task.save_prediction` and the row names the files.

    Prepared examples are collated into one batch; inputs of different sizes (which do not stack) run one at a
    time."""
    from ..data.loader import collate

    try:
        groups = [(collate(list(examples)), list(inputs))]
    except RuntimeError:  # different sizes: one batch per input
        groups = [(collate([e]), [item]) for e, item in zip(examples, inputs)]
    task, rows = model.task, []
    for batch, items in groups:
        if hasattr(task, "top_k"):
            for item, top in zip(items, task.top_k(model(batch), max(1, top_k))):
                best = top[0]
                row = {"input": item, "label": best["index"], "name": best["name"],
                       "probability": best["probability"]}
                if top_k > 1:
                    row["top"] = top
                rows.append(row)
            continue
        for item, p in zip(items, model.predict(batch)):
            p = task.save_prediction(p, Path(out_dir or "."), input_stem(item))  # dense outputs become files
            rows.append({"input": item, **(p if isinstance(p, dict) else {"prediction": p})})
    return rows


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for r in rows:
        if "top" in r:
            lines.append(f"{r['input']}: " + ", ".join(f"{t['name']} {t['probability']:.4f}" for t in r["top"]))
        elif "name" in r:
            lines.append(f"{r['input']}: {r['name']} {r['probability']:.4f}")
        else:
            lines.append(f"{r['input']}: " + ", ".join(f"{k}={v}" for k, v in r.items() if k != "input"))
    return "\n".join(lines)
