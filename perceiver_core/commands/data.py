"""`perceiver data PIPELINE`: what the pipeline's dataset found, before anyone trains: counts per split and class,
a few examples, the statistics, the files it left out and where its cache lives."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def describe_dataset(dataset, examples: int = 3) -> dict[str, Any]:
    """A file-backed dataset describes itself; any other dataset reports its splits' sizes and its info()."""
    if hasattr(dataset, "describe"):
        return dataset.describe(examples)
    info = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataset.info().items()}
    names = info.pop("label_names", None)
    splits = {}
    for split in dataset.splits:
        examples = dataset.examples(split)
        entry: dict[str, Any] = {"examples": len(examples)}
        labels = getattr(examples, "labels", None)  # in-memory splits (ArraySplit) hold their labels
        if names and labels is not None:
            counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
            entry["classes"] = {name: int(c) for name, c in zip(names, counts)}
        splits[split] = entry
    return {"dataset": type(dataset).__name__, "splits": splits, "label_names": names,
            "statistics": {}, "info": info, "skipped": [], "examples": []}


def format_description(d: dict[str, Any]) -> str:
    lines = [f"{d['dataset']}: {d['source']}" if d.get("source") else d["dataset"]]
    with_classes = any("classes" in entry for entry in d["splits"].values())
    names = (d.get("label_names") or []) if with_classes else []
    header = f"  {'split':<8}{'examples':>10}" + "".join(f"  {n[:12]:>12}" for n in names[:12])
    lines.append(header + ("  ..." if len(names) > 12 else ""))
    for split, entry in d["splits"].items():
        classes = entry.get("classes", {})
        counts = "".join(f"  {classes.get(n, 0):>12,}" for n in names[:12])
        lines.append(f"  {split:<8}{entry['examples']:>10,}" + counts)
    all_names = d.get("label_names") or []
    if all_names:
        names = all_names
        lines.append(f"  {len(names)} classes: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''}")
    for key, value in (d.get("statistics") or {}).items():
        lines.append(f"  {key}: {json.dumps(value)}")
    for key, value in (d.get("info") or {}).items():
        lines.append(f"  {key}: {json.dumps(value)}")
    skipped = d.get("skipped") or []
    if skipped:
        lines.append(f"  skipped {len(skipped)} unreadable file(s):")
        lines += [f"    {s['file']}: {s['reason']}" for s in skipped[:10]]
        if len(skipped) > 10:
            lines.append(f"    ... and {len(skipped) - 10} more")
    if d.get("examples"):
        lines.append("  examples:")
        for e in d["examples"]:
            label = f"  [{e['label']}]" if "label" in e else ""
            lines.append(f"    {e['file']}{label}  {e['what']}")
    if d.get("cache"):
        lines.append(f"  cache: {d['cache']}")
    return "\n".join(lines)
