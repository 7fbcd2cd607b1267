"""Installed, not cloned: wheels built from this repository, installed into a fresh virtual environment, used from
an empty folder (no source tree, no registry file): the pipelines come with the plugins that own them.

The environment gets torch and the other third-party dependencies from this environment's site-packages through
a folder of links (everything but the perceiver distributions), so the test is offline and takes seconds to set
up; the perceiver distributions themselves come only from the wheels.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from perceiver_core.testing.install import build_wheels, isolated_venv, run_clean

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    return run_clean(cmd, cwd, env, timeout)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """Wheels of the core and every first-party plugin, built from a copy of the sources (the checkout stays clean)."""
    root = tmp_path_factory.mktemp("build")
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info",
                                                             "__pycache__", "tests", "benchmarks"))
    projects = [src, *sorted(p.parent for p in (src / "plugins").glob("*/pyproject.toml"))]
    return build_wheels(root / "wheels", *projects)


_venv = isolated_venv  # a fresh venv that sees this environment's third-party packages, but no perceiver one


@pytest.mark.slow
def test_wheels_in_an_empty_folder_train_evaluate_and_predict(wheels, tmp_path):
    venv = _venv(tmp_path)
    python, perceiver = venv / "bin" / "python", venv / "bin" / "perceiver"
    # core + image only: the CPU backend of the core trains (no perceiver-cpu)
    result = _run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels,
                   "perceiver-core", "perceiver-image"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([python, "-c", "import perceiver_core, perceiver_image; print(perceiver_core.__file__); "
                  "print(perceiver_image.__file__)"], cwd=empty)
    assert all(str(venv) in line for line in where.stdout.split()), where.stdout  # the wheels, not the checkout
    listing = _run([perceiver, "pipelines", "--json"], cwd=empty)
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["digits"]["source"] == "perceiver-image" and "digits-permuted" in rows
    assert "text-mlm-tiny" not in rows  # perceiver-text is not installed: its pipelines are not listed ...
    missing = _run([perceiver, "train", "text-mlm-tiny", "--out", "t"], cwd=empty)
    assert missing.returncode == 2 and "ships with the plugin perceiver-text, which is not installed" in missing.stderr
    assert "perceiver-core[text]" in missing.stderr  # ... and the hint names what installs it
    backends = json.loads(_run([perceiver, "backends", "--json"], cwd=empty).stdout)
    assert [(b["name"], b["distribution"]) for b in backends] == [("cpu", "perceiver-core")]

    train = _run([perceiver, "train", "digits", "--out", "r", "--max-steps", "120", "--no-progress", "--json"],
                 cwd=empty)
    assert train.returncode == 0, train.stderr
    trained = json.loads(train.stdout)
    # it learns (chance: 0.1): 120 steps of the 2x2-patch default give 0.891 with 1 and with 2 threads
    assert trained["step"] == 120 and trained["accuracy"] > 0.8, trained
    evaluated = _run([perceiver, "evaluate", "--checkpoint", "r", "--json"], cwd=empty)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == trained["accuracy"]
    predicted = _run([perceiver, "predict", "--checkpoint", "r", "test:0", "--json"], cwd=empty)
    assert predicted.returncode == 0 and "label" in json.loads(predicted.stdout)[0], predicted.stderr
    inspected = json.loads(_run([perceiver, "inspect", "r", "--json"], cwd=empty).stdout)
    assert inspected["pipeline"] == "digits" and inspected["step"] == 120 and inspected["num_parameters"] > 100_000
    assert json.loads((empty / "r" / "config.json").read_text())["pipeline"]["name"] == "digits"

    # the rest of the first-party set through the extra; perceiver-cpu then refines the core's CPU backend
    result = _run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels,
                   "perceiver-core[all]"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r["source"] for r in json.loads(_run([perceiver, "pipelines", "--json"], cwd=empty).stdout)}
    assert rows["text-mlm-tiny"] == "perceiver-text" and rows["wine"] == "perceiver-tabular"
    assert rows["shapes"] == "perceiver-pointcloud" and rows["hip-tiny"] == "perceiver-image"
    assert rows["audio-words"] == "perceiver-audio"
    assert rows["video-ae-tiny"] == "perceiver-video"
    backends = {b["name"]: b["distribution"] for b in json.loads(_run([perceiver, "backends", "--json"],
                                                                      cwd=empty).stdout)}
    assert backends["cpu"] == "perceiver-cpu" and {"cuda", "mps"} <= set(backends)
    valid = _run([perceiver, "validate", "--json"], cwd=empty)
    assert valid.returncode == 0 and json.loads(valid.stdout)["valid"], valid.stdout + valid.stderr
    licenses = list(Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
                    .glob("perceiver_*.dist-info/licenses/LICENSE"))
    plugins = len(list((ROOT / "plugins").glob("*/pyproject.toml")))
    assert len(licenses) == 1 + plugins and all("Apache License" in p.read_text() for p in licenses)  # core + plugins
