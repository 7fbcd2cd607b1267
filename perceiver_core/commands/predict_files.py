"""Predictions as rows for `perceiver predict`: class names and probabilities (top k) when the task is a
classifier, the task's own postprocessing otherwise. Kept apart from the command so the checkpoint-only predict
path can call it too."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch


@torch.no_grad()
def prediction_rows(model, batch: Mapping[str, Any], inputs: Sequence[str], top_k: int = 1) -> list[dict[str, Any]]:
    """One row per input: {"input", "label", "name", "probability", "top": [...] (k > 1)} for classifiers (names
    from the class names the checkpoint keeps), else {"input", **postprocess}."""
    outputs = model(batch)
    task = model.task
    if hasattr(task, "top_k"):
        rows = []
        for item, top in zip(inputs, task.top_k(outputs, max(1, top_k))):
            best = top[0]
            row = {"input": item, "label": best["index"], "name": best["name"], "probability": best["probability"]}
            if top_k > 1:
                row["top"] = top
            rows.append(row)
        return rows
    predictions = task.postprocess(outputs, batch)
    return [{"input": item, **(p if isinstance(p, dict) else {"prediction": p})}
            for item, p in zip(inputs, predictions)]


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
