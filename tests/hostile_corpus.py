"""A corpus of hostile input files, generated locally (nothing shipped, nothing downloaded).

Each case is (name, writer, expected): `writer(folder) -> Path` writes the file and returns the path to hand to
the command; `expected` is a fragment the one error line must contain. Used by tests/test_hostile_inputs.py, which
runs every case through the CLI in a subprocess and checks: exit 2, one line on stderr, no traceback, peak RSS
bounded (`run_measured`).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

NPY_MAGIC_V1 = b"\x93NUMPY\x01\x00"


def _npy_header(descr: str, shape: tuple, fortran: bool = False) -> bytes:
    """A version 1.0 .npy header for any claimed shape (no data follows unless the caller writes it)."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape})
    total = len(NPY_MAGIC_V1) + 2 + len(text) + 1
    pad = (64 - total % 64) % 64
    text = text + " " * pad + "\n"
    return NPY_MAGIC_V1 + struct.pack("<H", len(text)) + text.encode("latin1")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, rows: int | None = None, *, truncate: int | None = None) -> bytes:
    """A grayscale 8-bit PNG claiming width x height; IDAT holds `rows` rows of zeros (default: all of them).
    With a huge claimed size and few rows this is a decompression bomb's header: a decoder that trusts it
    allocates width x height bytes before finding out the data is short."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = height if rows is None else rows
    raw = zlib.compress(b"\x00" * ((width + 1) * rows), 9)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", raw) + _png_chunk(b"IEND", b"")
    return data[:truncate] if truncate else data


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path
    return write


def _npy(name: str, descr: str, shape: tuple, payload: bytes = b"") -> Callable[[Path], Path]:
    return _bytes(name, _npy_header(descr, shape) + payload)


def _saved(name: str, array) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        np.save(path, array, allow_pickle=True)
        return path
    return write


# -- files given to `perceiver predict` of an image model ----------------------------------------------------
IMAGE_INPUTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("npy-empty-file", _bytes("empty.npy", b""), "the file is empty"),
    ("npy-claims-1e12-elements", _npy("huge.npy", "<f4", (1_000_000, 1_000_000)), "1,000,000,000,000 elements"),
    ("npy-claims-1e12-uint8", _npy("huge8.npy", "|u1", (10**6, 10**6)), "more than the limit"),
    ("npy-truncated", _npy("short.npy", "<f4", (8, 8), b"\x00" * 40), "truncated"),
    ("npy-object-dtype", _saved("objects.npy", np.array([{"a": 1}, None], dtype=object)), "not a plain numeric"),
    ("npy-structured", _saved("records.npy", np.zeros(3, dtype=[("x", "<f4"), ("y", "<i4")])), "not a plain numeric"),
    ("npy-strings", _saved("strings.npy", np.array(["a", "bc"])), "not a plain numeric"),
    ("npy-zero-size", _npy("zero.npy", "<f4", (0, 8)), "an empty array"),
    ("npy-bad-magic", _bytes("magic.npy", b"NOTNUMPY" + b"\x00" * 100), "not a .npy array"),
    ("npy-header-garbage", _bytes("garbage.npy", NPY_MAGIC_V1 + struct.pack("<H", 200) + b"{'x': " + b"(" * 194),
     "not a .npy array"),
    ("npy-negative-shape", _npy("negative.npy", "<f4", (-1, 8)), "not a .npy array"),
    ("npy-wrong-rank", _saved("rank1.npy", np.zeros(5, dtype=np.float32)), "must be [H, W] or [H, W, C]"),
    ("png-empty-file", _bytes("empty.png", b""), "the file is empty"),
    ("png-decompression-bomb", _bytes("bomb.png", png_bytes(100_000, 100_000, rows=16)), "decompression bomb"),
    ("png-bomb-just-over-limit", _bytes("bomb2.png", png_bytes(8193, 8193, rows=4)), "more than max_pixels = 67,108,864"),
    ("png-truncated", _bytes("cut.png", png_bytes(8, 8, truncate=45)), "corrupt or truncated image"),
    ("png-random-bytes", _bytes("noise.png", bytes(range(256)) * 4), "not an image file Pillow can read"),
    ("pgm-claims-1e10-pixels", _bytes("huge.pgm", b"P5 100000 100000 255\n" + b"\x00" * 64), "could be decompression bomb"),
    ("pgm-garbage-header", _bytes("garbage.pgm", b"P5 wide tall 255\n\x00"), "corrupt or truncated image"),
    ("pgm-empty-file", _bytes("empty.pgm", b""), "the file is empty"),
]


# -- HF checkpoint folders given to `perceiver import-hf` (config.json only: it is read first) ------------------
def _config(value, raw: bytes | None = None) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        d = folder / "hf"
        d.mkdir(exist_ok=True)
        (d / "config.json").write_bytes(raw if raw is not None else json.dumps(value).encode())
        return d
    return write


_OK = {"model_type": "perceiver", "architectures": ["PerceiverForMaskedLM"]}
HF_CONFIGS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("config-is-a-list", _config([1, 2, 3]), "a JSON list, not an object"),
    ("config-is-a-string", _config("perceiver"), "a JSON str, not an object"),
    ("config-deeply-nested", _config(None, b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
    ("config-nested-object", _config(None, b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "nested too deeply"),
    ("config-not-json", _config(None, b"{model_type: perceiver"), "not readable JSON"),
    ("config-not-utf8", _config(None, b'{"model_type": "\xff\xfe"}'), "not readable JSON"),
    ("config-int-as-string", _config({**_OK, "num_latents": "256"}), "num_latents: Input should be a valid integer"),
    ("config-bool-as-int", _config({**_OK, "use_query_residual": 1}), "use_query_residual"),
    ("config-absurd-size", _config({**_OK, "d_latents": 10**12}), "d_latents: Input should be less than or equal"),
    ("config-nan-size", _config(None, b'{"model_type": "perceiver", "num_latents": NaN}'), "num_latents"),
    ("config-architectures-int", _config({**_OK, "architectures": 5}), "architectures: Input should be a valid list"),
    ("config-id2label-int", _config({**_OK, "id2label": 7}), "id2label: Input should be a valid dictionary"),
    ("config-image-size-zero", _config({**_OK, "image_size": [0, 0]}), "image_size"),
    ("config-model-type-list", _config({"model_type": ["perceiver"]}), "not 'perceiver'"),
    ("config-too-large", _config(None, b'{"model_type": "perceiver", "pad": "' + b"x" * (2 << 20) + b'"}'),
     "not a config.json"),
]


def run_measured(cmd: list[str], *, env: dict | None = None, timeout: int = 300) -> tuple[subprocess.CompletedProcess,
                                                                                          int]:
    """Run `cmd` as the child of a small wrapper that reports the child's peak RSS (bytes): the measurement is
    of that one process, not of everything the test session ran before."""
    wrapper = ("import json, resource, subprocess, sys\n"
               "p = subprocess.run(json.loads(sys.argv[1]), capture_output=True)\n"
               "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr)\n"
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
               "sys.stderr.write('\\n@@peak_rss=%d\\n' % peak); sys.exit(p.returncode)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, json.dumps(cmd)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    body, _, tail = proc.stderr.rpartition("\n@@peak_rss=")
    proc.stderr = body.rstrip("\n") + ("\n" if body.strip() else "")
    return proc, int(tail.strip() or 0)
