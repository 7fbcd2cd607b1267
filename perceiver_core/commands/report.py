"""How the `perceiver` command reports a user error (one line on stderr, exit code 2; under torchrun once, and into
torchrun's error file) and leaves quietly when its reader went away (`perceiver schema | head`)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time


def user_error(line: str) -> int:
    """Report a user error: one line on stderr, exit code 2.

    Under torchrun every process usually meets the same error (the same pipeline, the same flags): only rank 0
    prints it, so the line appears once, and every process exits 2. Each process also leaves the line in the error
    file torchrun gives it (TORCHELASTIC_ERROR_FILE), so that torchrun's own failure report, which it prints after
    any process fails, names this line as its root cause (not "To enable traceback see ..."), and an error met by
    another process alone is not lost."""
    if os.environ.get("RANK", "0") == "0":
        print(line, file=sys.stderr, flush=True)
    elif "WORLD_SIZE" in os.environ:  # the first process to exit makes torchrun stop the others: give rank 0,
        time.sleep(1.0)  # which usually fails alike, the moment it needs to print the line
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if error_file and "WORLD_SIZE" in os.environ:
        with contextlib.suppress(OSError):  # torchrun's report is a courtesy: never an error of its own
            with open(error_file, "w", encoding="utf-8") as f:
                # the format torchrun's own @record writes, the line in place of a traceback
                json.dump({"message": {"message": line, "extraInfo": {"py_callstack": line,
                                                                      "timestamp": str(int(time.time()))}}}, f)
    return 2


def silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
