"""One run per output folder: an exclusive lock on `--out`.

Two runs writing one folder interleave metrics.jsonl and overwrite each other's checkpoints. The first run takes
`OUT/.perceiver.lock`: an OS lock (`fcntl.flock`, released by the kernel when the process dies, even by kill -9)
on a file that names the holder (pid, host, start time). A second run finds the OS lock held and refuses in one
line naming the holder. A lock file that names a holder but whose OS lock is free was left by a process that died
without cleaning up: it is taken over, and the takeover is said on stderr.

Where `fcntl` does not exist (Windows) the file alone is the lock: a holder on this host whose pid no longer runs
is stale; a holder on another host is always respected (delete the file by hand if that host is gone).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

LOCK_NAME = ".perceiver.lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunLockedError(UserError):
    """Another live run holds the output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _describe(holder: dict[str, Any]) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


def _read_holder(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)  # the holder record is ~100 bytes: never read more than this
    if not raw.strip():
        return None
    try:
        holder = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"pid": "?", "host": "?", "damaged": True}
    return holder if isinstance(holder, dict) else {"pid": "?", "host": "?", "damaged": True}


class RunLock:
    """`with RunLock(out): ...` holds `out` for this process; see the module docstring."""

    def __init__(self, folder: str | os.PathLike, *, note=None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self._note = note or (lambda message: print(f"perceiver: note: {message}", file=sys.stderr))

    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd) or {}
                    raise RunLockedError(
                        f"{self.folder} is in use by another run ({_describe(holder)}); wait for it to finish, "
                        "or choose another --out") from None
                previous = _read_holder(fd)
            else:  # pragma: no cover - Windows
                previous = _read_holder(fd)
                if previous and not self._stale_without_flock(previous):
                    raise RunLockedError(f"{self.folder} is in use by another run ({_describe(previous)}); wait for "
                                         f"it to finish, or choose another --out (or delete {self.path} if it is "
                                         "gone)")
            if previous is not None and previous.get("pid") != os.getpid():
                self._note(f"{self.folder} was locked by a run that is no longer running ({_describe(previous)}); "
                           "taking the lock over")
            record = {"pid": os.getpid(), "host": socket.gethostname(), "started": round(time.time(), 3)}
            try:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, (json.dumps(record) + "\n").encode())
                os.fsync(fd)
            except OSError as exc:  # a full disk before the run starts: one line naming the lock file
                from .files import disk_error

                raise disk_error(self.path, exc, "the run has not started and the folder's other files are "
                                                 "unchanged: free space and run again") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    @staticmethod
    def _stale_without_flock(holder: dict[str, Any]) -> bool:  # pragma: no cover - Windows
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return not (isinstance(pid, int) and _pid_alive(pid))

    def release(self) -> None:
        """Empty the record (the file stays: deleting it would let two runs lock two different files)."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
