"""Writing a run's small files (pipeline.json, metrics.png, metrics.csv) so that a full disk is one line naming the
file, and never costs what was already there.

A file is written whole under a temporary name in its own folder and renamed over the old one: a write that fails
(the disk is full, the quota is spent, the folder became read-only) leaves the previous file as it was and no
temporary file behind; with `fsync` the file and its folder reach the disk before the call returns. The checkpoint's
safetensors parts have their own staged path (checkpoint.py), whose manifest, the commit point, is written here;
metrics.jsonl is appended line by line (training.py's `_write`).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import UserError

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # out of space, out of quota


def disk_error(path: str | os.PathLike, exc: OSError, consequence: str) -> UserError:
    """One line for a failed write of `path`: what failed, why, and `consequence` (what is intact, what to do)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    full = " (the disk is full)" if exc.errno in _FULL else " (is the disk full?)"
    return UserError(f"could not write {path}: {reason}{full}; {consequence}")


def atomic_write(path: str | os.PathLike, data: bytes | str, consequence: str, *, fsync: bool = True) -> None:
    """Write `data` to `path` whole or not at all (temporary file + rename); a failure is `disk_error`.

    A link is followed (the file it names is replaced, not the link); a path that is not a regular file (a device
    such as /dev/stdout, a pipe) is written in place: renaming over it would replace the device by a file."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.exists() and not path.is_file():  # (both follow links)
        try:
            with open(path, "wb") as f:
                f.write(raw)
        except BrokenPipeError:  # the reader left (`--out /dev/stdout | head`): the caller's to handle
            raise
        except OSError as exc:
            raise disk_error(path, exc, consequence) from None
        return
    if path.is_symlink():
        path = path.resolve()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            fsync_path(path.parent)  # the rename itself is durable
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise disk_error(path, exc, consequence) from None


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file, or a folder (so that a rename in it is durable); folders cannot be opened everywhere."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
