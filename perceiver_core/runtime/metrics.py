"""Reading metrics.jsonl defensively, and trimming it to one run's history on `--resume`.

A run killed while writing leaves a torn last line, and a file edited by hand can hold anything: readers skip a
line that is not a JSON object with a numeric `step`, naming the line, instead of crashing at the end of a run.
A resumed run continues from its last checkpoint's step, so lines logged after that checkpoint (by the run that
was interrupted) are dropped: the file then reads as one run, each step once.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

MAX_LINE = 1 << 20  # a metrics line is ~200 bytes; a longer one is damage, not data


def read_metrics(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """(records, problems): the well-formed records in file order, and one line per skipped line."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    if not path.is_file():
        return records, problems
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if len(raw) > MAX_LINE:
                problems.append(f"{path}:{number}: damaged line skipped (longer than {MAX_LINE} bytes)")
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                problems.append(f"{path}:{number}: damaged line skipped (not JSON: {exc})")
                continue
            step = record.get("step") if isinstance(record, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                problems.append(f"{path}:{number}: damaged line skipped (not a record with an integer step)")
                continue
            records.append(record)
    return records, problems


def numeric(record: dict[str, Any], key: str) -> bool:
    value = record.get(key)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def trim_for_resume(source: str | os.PathLike, target: str | os.PathLike, step: int) -> list[str]:
    """Write to `target` the records of `source` up to `step` (the checkpoint resumed from); returns the problems
    (damaged lines dropped, lines after the checkpoint dropped). Atomic: a crash leaves the old file."""
    records, problems = read_metrics(source)
    kept = [r for r in records if r["step"] <= step]
    if len(kept) < len(records):
        problems.append(f"{source}: {len(records) - len(kept)} line(s) logged after the checkpoint of step {step} "
                        "dropped (the resumed run logs those steps again)")
    from .files import atomic_write

    atomic_write(target, "".join(json.dumps(r) + "\n" for r in kept),
                 f"{source} and the checkpoint are intact: free space and continue with --resume")
    return problems
