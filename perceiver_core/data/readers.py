"""Readers for input files that bound what they allocate before they read (public: plugins use them).

An input file is hostile input: an empty file, a .npy whose header claims 10^12 elements (numpy would try to
allocate terabytes), a PNG whose header claims 10^10 pixels (a decompression bomb), a 20 GB "text" file. Each
reader checks the header and the file size against a limit first and raises one `InputFileError` line saying
what is wrong; the limits are generous for real inputs and overridable by environment variables:

- `PERCEIVER_MAX_INPUT_BYTES` (default 1 GiB): the decoded array or the file read, in bytes;
- `PERCEIVER_MAX_IMAGE_PIXELS` (default 2^26, e.g. 8192 x 8192): pixels of one image (`max_image_pixels()`; the
  image plugin's one decoder checks it from the header before decoding).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
import numpy as np

from ..errors import UserError

DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_MAX_PIXELS = 1 << 26
NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: no objects, strings, structured or void dtypes


class InputFileError(UserError, ValueError):
    """An input file is empty, truncated, malformed or larger than the limits."""


def _limit(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{env}={raw!r} is not a whole number of bytes/pixels") from None
    if value <= 0:
        raise UserError(f"{env}={raw!r} must be positive")
    return value


def max_input_bytes() -> int:
    return _limit("PERCEIVER_MAX_INPUT_BYTES", DEFAULT_MAX_BYTES)


def max_image_pixels() -> int:
    return _limit("PERCEIVER_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS)


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"input file {str(path)!r} does not exist (or is not a file)")
    return p


def checked_input_file(path: str | os.PathLike, *, max_bytes: int | None = None,
                       what: str = "") -> tuple[Path, int]:
    """(the path, the byte limit) of an existing, non-empty file no larger than `max_bytes` (default
    PERCEIVER_MAX_INPUT_BYTES), checked before anything reads it; each failure one `InputFileError` line. `what`
    names the expected content in the empty-file message (e.g. "a sound file")."""
    p = _existing(path)
    limit = max_bytes or max_input_bytes()
    size = p.stat().st_size
    if size == 0:
        raise InputFileError(f"{path}: the file is empty" + (f", not {what}" if what else ""))
    if size > limit:
        raise InputFileError(f"{path}: {size:,} bytes, more than the limit of {limit:,} "
                             "(raise PERCEIVER_MAX_INPUT_BYTES if it is really meant)")
    return p, limit


def read_bounded(path: str | os.PathLike, *, max_bytes: int | None = None) -> bytes:
    """The bytes of a file no larger than `max_bytes` (checked before reading; an empty file is an error)."""
    p, limit = checked_input_file(path, max_bytes=max_bytes)
    with open(p, "rb") as f:
        return f.read(limit + 1)[:limit]


def read_npy(path: str | os.PathLike, *, max_bytes: int | None = None) -> np.ndarray:
    """A numeric .npy array, its header checked before any allocation: no pickles or object/structured dtypes,
    no empty array, no more bytes than `max_bytes`, and no more than the file actually holds."""
    p = _existing(path)
    limit = max_bytes or max_input_bytes()
    size = p.stat().st_size
    if size == 0:
        raise InputFileError(f"{path}: the file is empty, not a .npy array")
    fmt = np.lib.format
    with open(p, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=10_000)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=10_000)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as exc:  # noqa: BLE001 - numpy's header parser raises ValueError, SyntaxError, TokenError...
            raise InputFileError(f"{path}: not a .npy array ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())[:200]})") from None
        if any(not isinstance(n, int) or n < 0 for n in shape):
            raise InputFileError(f"{path}: not a .npy array (its header claims shape {list(shape)})")
        if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype:
            raise InputFileError(f"{path}: dtype {dtype} is not a plain numeric dtype (no objects, strings or "
                                 "records: save a numeric array)")
        count = math.prod(shape)
        if count == 0:
            raise InputFileError(f"{path}: an empty array of shape {list(shape)}")
        nbytes = count * dtype.itemsize
        if nbytes > limit:
            raise InputFileError(f"{path}: the header claims shape {list(shape)} ({count:,} elements, {nbytes:,} "
                                 f"bytes), more than the limit of {limit:,} bytes (raise PERCEIVER_MAX_INPUT_BYTES "
                                 "if it is really meant)")
        left = size - f.tell()
        if left < nbytes:
            raise InputFileError(f"{path}: truncated: the header claims {nbytes:,} bytes of data, the file holds "
                                 f"{left:,}")
        data = np.empty(count, dtype=dtype)  # writable, allocated once, its size checked above
        if f.readinto(memoryview(data.view(np.uint8))) != nbytes:
            raise InputFileError(f"{path}: truncated while reading")
    return data.reshape(shape, order="F" if fortran else "C")
