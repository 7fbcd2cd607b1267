"""Calling into plugin code as into hostile code: what it printed, how long it took, what global state it changed.

`with guarded() as call: <import a plugin or run its hook>` keeps the process's stdout clean (a plugin that prints
at import would otherwise corrupt every `--json` document): Python-level writes and writes to file descriptor 1
are captured instead. Afterwards `call.output` holds what was printed, `call.seconds` the wall time, and
`call.torch_changes` the torch global state the code changed (default dtype, the default generator's seed or
state), which is restored: one plugin must not silently change the numerics of every other.

Nothing here imports torch: torch is inspected only when something already imported it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

SLOW_IMPORT_SECONDS = 1.0
# torch seeds its global generator with a random 64-bit number at import: when a plugin's import is what imported
# torch there is no "before" to compare, but a seed below 2**32 is (but for a 2**-32 chance) a manual_seed call
SEEDED_BELOW = 1 << 32
MAX_CAPTURE = 1 << 16  # what a plugin printed is kept for its report up to this many bytes


@dataclass
class GuardedCall:
    output: str = ""
    seconds: float = 0.0
    torch_changes: list[str] = field(default_factory=list)

    def problems(self, what: str) -> list[str]:
        """Reports that make the plugin broken (it changed global state)."""
        return [f"{what} changed torch's global state ({change}); it was restored: a plugin must not change "
                "global settings at import or registration (set them in your own code paths)"
                for change in self.torch_changes]

    def warnings(self, what: str, *, slow: bool = False) -> list[str]:
        """Reports that do not break the plugin (printing, a slow import)."""
        out = []
        if self.output.strip():
            first = " ".join(self.output.split())[:80]
            out.append(f"{what} printed to stdout ({len(self.output)} characters, kept out of the output: "
                       f"{first!r}); plugins must not print (use logging or warnings)")
        if slow and self.seconds > SLOW_IMPORT_SECONDS:
            out.append(f"{what} took {self.seconds:.1f} s (more than {SLOW_IMPORT_SECONDS:.0f} s): every "
                       "`perceiver` command pays it; import heavy modules (torch, data) inside factories, not at "
                       "the top of the plugin module")
        return out


def _torch_snapshot() -> dict[str, Any] | None:
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_default_dtype"):
        return None
    return {"dtype": torch.get_default_dtype(), "seed": torch.initial_seed(), "rng": torch.get_rng_state()}


def _torch_compare(before: dict[str, Any] | None, call: GuardedCall) -> None:
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_default_dtype"):
        return
    fresh = before is None  # torch was imported by this very call: compare with torch's import-time defaults
    dtype = torch.float32 if fresh else before["dtype"]
    if torch.get_default_dtype() != dtype:
        call.torch_changes.append(f"default dtype {str(torch.get_default_dtype()).removeprefix('torch.')} "
                                  f"instead of {str(dtype).removeprefix('torch.')}")
        torch.set_default_dtype(dtype)
    seeded = torch.initial_seed() < SEEDED_BELOW if fresh else torch.initial_seed() != before["seed"]
    if seeded:
        call.torch_changes.append(f"seeded the global RNG with {torch.initial_seed()}")
        if fresh:
            torch.seed()  # a fresh random seed, as a plain `import torch` leaves it
        else:
            torch.set_rng_state(before["rng"])
            torch.default_generator.manual_seed(before["seed"])  # initial_seed() back, then the exact state
            torch.set_rng_state(before["rng"])
    elif not fresh and not torch.equal(torch.get_rng_state(), before["rng"]):
        call.torch_changes.append("drew from the global RNG")
        torch.set_rng_state(before["rng"])


@contextlib.contextmanager
def _capture_fd1(sink: list[str]) -> Iterator[None]:
    """Redirect file descriptor 1 into a temporary file (C code and os.write bypass sys.stdout)."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        try:
            sys.__stdout__.flush() if sys.__stdout__ is not None else None
        except (OSError, ValueError):
            pass
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            try:
                sys.__stdout__.flush() if sys.__stdout__ is not None else None
            except (OSError, ValueError):
                pass
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read(MAX_CAPTURE).decode("utf-8", "replace"))


@contextlib.contextmanager
def guarded() -> Iterator[GuardedCall]:
    call = GuardedCall()
    before = _torch_snapshot()
    buffer = io.StringIO()
    raw: list[str] = []
    start = time.perf_counter()
    try:
        with _capture_fd1(raw), contextlib.redirect_stdout(buffer):
            yield call
    finally:
        call.seconds = time.perf_counter() - start
        call.output = (buffer.getvalue()[:MAX_CAPTURE] + "".join(raw))
        _torch_compare(before, call)
