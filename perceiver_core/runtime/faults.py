"""A test hook: kill the process at a named point of the save path (`PERCEIVER_FAULT`).

`PERCEIVER_FAULT=after-model-rename` makes the process `os._exit(137)` (what a kill -9 leaves behind: no cleanup,
no `finally`) the first time the save path reaches that point; `POINT@N` the N-th time; several points are
separated by commas. Unset (always, outside tests), `fault_point` is a dictionary look-up and nothing else.
The fault-injection tests (tests/test_fault_injection.py) kill a run at each point and check that
`train --resume` continues it to the very weights of an uninterrupted run.

Points: `before-save`, `after-model-write`, `after-trainer_state-write` (both parts written under temporary
names, nothing published), `after-manifest` (checkpoint.json names the new unit, no part renamed yet),
`after-model-rename` (between the two parts), `after-trainer_state-rename`, `after-save` (config.json written),
`after-step` (an optimizer step, between checkpoints).
"""

from __future__ import annotations

import os

ENV = "PERCEIVER_FAULT"
_hits: dict[str, int] = {}


def _targets() -> dict[str, int]:
    out: dict[str, int] = {}
    for item in os.environ.get(ENV, "").split(","):
        item = item.strip()
        if item:
            name, _, nth = item.partition("@")
            out[name] = int(nth) if nth.isdigit() else 1
    return out


def fault_point(name: str) -> None:
    """Exit at once with status 137 if `PERCEIVER_FAULT` names this point (and this is its N-th hit)."""
    if ENV not in os.environ:
        return
    wanted = _targets().get(name)
    if wanted is None:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == wanted:
        os._exit(137)
