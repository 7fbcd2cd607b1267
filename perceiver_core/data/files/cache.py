"""A small JSON cache of what one pass over a dataset found (unreadable files, statistics), keyed by a fingerprint.

The fingerprint hashes every file's name, size and modification time (one `stat` each, no reads), so adding,
removing, replacing or touching a file invalidates the cache. The cache is written beside the data
(`.perceiver-cache/` in the data folder); where that folder is read-only, under `data.cache_dir`,
`$PERCEIVER_CACHE_DIR` or `~/.cache/perceiver/data`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

CACHE_FOLDER = ".perceiver-cache"
VERSION = 1


def fingerprint(files: Iterable[str], settings: Mapping[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name in files:
        try:
            st = os.stat(name)
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\0missing\n".encode())
    return h.hexdigest()


def _default_dir(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("PERCEIVER_CACHE_DIR"):
        return Path(os.environ["PERCEIVER_CACHE_DIR"]).expanduser()
    return Path.home() / ".cache" / "perceiver" / "data"


def cache_paths(base: Path, name: str, cache_dir: str | None) -> list[Path]:
    """Where the cache of the data at `base` may live, in order of preference."""
    beside = Path(base) / CACHE_FOLDER / f"{name}.json"
    key = hashlib.sha256(str(Path(base).resolve()).encode()).hexdigest()[:16]
    elsewhere = _default_dir(cache_dir) / f"{key}-{name}.json"
    return [elsewhere, beside] if cache_dir else [beside, elsewhere]


def load(paths: list[Path], expected: str) -> tuple[dict[str, Any] | None, Path | None]:
    """The cached record whose fingerprint matches, and its path; (None, None) when there is none."""
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("version") == VERSION and record.get("fingerprint") == expected:
            return record, path
    return None, None


def save(paths: list[Path], record: Mapping[str, Any]) -> Path | None:
    """Write the record to the first writable place (atomically); None when none is writable."""
    text = json.dumps({"version": VERSION, **record}, indent=1)
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
            return path
        except OSError:
            continue
    return None
