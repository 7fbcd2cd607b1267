"""Thread oversubscription: intra-op threads competing with other busy processes for the same cores.

torch runs one intra-op thread per core by default (the CPU backend sets it to the usable cores unless
OMP_NUM_THREADS is set). On a machine whose cores are already busy, those threads wait on each other at every
parallel region: a training run on a loaded 2-core machine was 15x slower with the default threads than with one.
`check_threads` compares torch's thread count with the cores and the other runnable work (the 1-minute load
average and the instantaneous count of runnable tasks in /proc/loadavg) and says which setting fixes it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _runnable_others() -> int | None:
    """Runnable tasks system-wide right now, minus this process (None where /proc/loadavg does not exist)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            running = int(f.read(256).split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(running - 1, 0)


@dataclass
class ThreadCheck:
    threads: int
    cores: int
    load_average: float | None
    runnable_others: int | None
    omp_num_threads: str | None
    warning: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_threads(threads: int | None = None) -> ThreadCheck:
    """Is `threads` (default: torch's current intra-op count) too many for the cores left free by other work?"""
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    others = _runnable_others()
    # Cores the rest of the machine keeps busy. Both signals must agree: the 1-minute load average lags (it still
    # counts a build that just ended) and the runnable count is one instant; where only one exists, it decides.
    known = [x for x in (load, others) if x is not None]
    busy = min(known) if known else 0.0
    free = max(int(cores - busy + 0.5), 1)
    warning = None
    if threads > 1 and threads > free:
        warning = (f"torch uses {threads} threads on {cores} core(s) while other processes keep ~{busy:.1f} busy "
                   f"(load average {load if load is None else round(load, 2)}): the threads will wait on each other "
                   f"(training can be many times slower); set OMP_NUM_THREADS={free} (e.g. OMP_NUM_THREADS={free} "
                   "perceiver train ...)")
    return ThreadCheck(threads, cores, None if load is None else round(load, 2), others,
                       os.environ.get("OMP_NUM_THREADS"), warning)
