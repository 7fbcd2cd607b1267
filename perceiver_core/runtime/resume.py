"""resume_spec: a resumed run is the same experiment, so its pipeline comes from the run's own pipeline.json and
flags that would change it are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..registry.spec import PipelineSpec


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def resume_spec(folder: str | Path, *, pipeline: str | None = None, overrides=(), max_steps: int | None = None,
                allow_changes: bool = False, plugin_manager=None) -> PipelineSpec:
    """The resolved pipeline of the run in `folder` (its pipeline.json), so that a resume is the same experiment.

    Flags that would change it (`--set`, `--max-steps`, `--init-from` ...) are refused in one line naming the keys
    that differ, unless `allow_changes`; a PIPELINE other than the run's is an error.
    """
    from ..registry.file import resolve_table

    folder = Path(folder)
    file = folder / "pipeline.json"
    if not file.is_file():
        raise UserError(f"--resume {folder}: no pipeline.json there; is it the --out folder of `perceiver train`?")
    try:
        table = json.loads(file.read_text(encoding="utf-8"))
        name = table["name"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{file} is not a pipeline.json written by `perceiver train` (no pipeline name)") from None
    if pipeline is not None and pipeline != name:
        raise UserError(f"--resume {folder}: that run trains pipeline {name!r}, not {pipeline!r}; leave PIPELINE out "
                        "(the run's pipeline.json names it)")
    base = resolve_table(name, table, str(file), plugin_manager)
    changes = list(overrides) + ([f"train.max_steps={max_steps}"] if max_steps is not None else [])
    if not changes:
        return base
    changed = resolve_table(name, table, str(file), plugin_manager, overrides=changes)
    before, after = _flatten(base.to_json()), _flatten(changed.to_json())
    diff = [f"{k} ({before.get(k)!r} -> {after.get(k)!r})" for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)]
    if diff and not allow_changes:
        raise UserError(f"--resume {folder}: these flags change the run's pipeline: {', '.join(diff)}; resume "
                        "without them, or pass --allow-changes to continue with the change")
    return changed
