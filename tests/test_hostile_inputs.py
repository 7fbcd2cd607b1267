"""Hostile input files (tests/hostile_corpus.py) through the CLI: exit 2, one line on stderr naming the file and
what is wrong, no traceback, and a bounded peak RSS (a reader that trusted a header claiming 10^12 elements or
10^10 pixels would allocate terabytes). Also `evaluate` with a checkpoint of another pipeline: one line."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TINY = HERE / "tiny.toml"
_spec = importlib.util.spec_from_file_location("hostile_corpus", HERE / "hostile_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

# torch + a tiny model is ~400-500 MB resident here; a trusted 10^12-element header would be terabytes
PEAK_RSS_LIMIT = 1_200 * 2**20
CI_IMAGE_CASES = {"npy-empty-file", "npy-claims-1e12-elements", "png-decompression-bomb", "npy-object-dtype"}
CI_HF_CASES = {"config-is-a-list", "config-deeply-nested", "config-int-as-string", "config-absurd-size"}


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "perceiver_core", *args]


def _one_line(proc, expected: str, path: Path | None = None):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("perceiver: error: ") and expected in lines[0], lines[0]
    if path is not None:
        assert path.name in lines[0]


@pytest.fixture(scope="module")
def image_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    proc, _ = corpus.run_measured(_cli("train", "tiny", "--registry", str(TINY), "--out", str(out), "--max-steps",
                                       "1", "--no-progress"), env=_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "model.safetensors"


def _params(cases, ci):
    return [pytest.param(writer, expected, id=name, marks=() if name in ci else pytest.mark.slow)
            for name, writer, expected in cases]


@pytest.mark.parametrize(("writer", "expected"), _params(corpus.IMAGE_INPUTS, CI_IMAGE_CASES))
def test_hostile_image_input(writer, expected, image_checkpoint, tmp_path):
    path = writer(tmp_path)
    proc, peak = corpus.run_measured(_cli("predict", "tiny", "--checkpoint",
                                          str(image_checkpoint), str(path)), env=_env())
    _one_line(proc, expected, path)
    assert 0 < peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(("writer", "expected"), _params(corpus.HF_CONFIGS, CI_HF_CASES))
def test_hostile_hf_config(writer, expected, tmp_path):
    folder = writer(tmp_path)
    proc, peak = corpus.run_measured(_cli("import-hf", str(folder), "--out", str(tmp_path / "x.safetensors")),
                                     env=_env())
    _one_line(proc, expected)
    assert 0 < peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"
    assert not (tmp_path / "x.safetensors").exists()


def test_corpus_size():
    assert len(corpus.IMAGE_INPUTS) + len(corpus.HF_CONFIGS) >= 30
    assert len({name for name, _, _ in corpus.IMAGE_INPUTS + corpus.HF_CONFIGS}) == \
        len(corpus.IMAGE_INPUTS) + len(corpus.HF_CONFIGS)


def test_the_bounded_readers_read_real_files_exactly(tmp_path):
    """The guards refuse the hostile, not the ordinary: real .npy (C and Fortran order) and PNG round-trip (images
    through the image plugin's one decoder, which `predict` and image folders share)."""
    import numpy as np
    from PIL import Image

    from perceiver_core import read_npy
    from perceiver_image.decode import decode_image

    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for order in ("C", "F"):
        np.save(tmp_path / f"{order}.npy", np.asarray(a, order=order))
        b = read_npy(tmp_path / f"{order}.npy")
        assert b.dtype == a.dtype and np.array_equal(a, b)
    img = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)
    Image.fromarray(img).save(tmp_path / "x.png")
    assert np.array_equal(decode_image(str(tmp_path / "x.png"))[..., 0], img)  # [H, W, 1] for a grey image


@pytest.mark.slow
def test_evaluate_with_a_checkpoint_of_another_pipeline_is_one_line(image_checkpoint):
    proc, _ = corpus.run_measured(_cli("evaluate", "text-mlm-tiny", "--checkpoint", str(image_checkpoint)),
                                  env=_env())
    _one_line(proc, "was trained as pipeline 'tiny', not 'text-mlm-tiny'")
