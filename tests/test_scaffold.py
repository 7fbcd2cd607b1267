"""`perceiver plugin new`: names are validated, the generated distribution is complete, installs with pip, passes
its own tests, is listed and checked by the CLI, and a pipeline using its components trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from perceiver_core.errors import UserError
from perceiver_core.plugins.scaffold import create_plugin, plugin_names, render

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "perceiver_core" / "plugins" / "scaffold" / "templates"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERCEIVER_")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def _run(*cmd: str, cwd: Path, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout)


def _cli(*args: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    return _run(sys.executable, "-m", "perceiver_core", *args, cwd=cwd, **env)


# -- names and targets ---------------------------------------------------------------------------------------------
def test_names_derive_distribution_package_and_classes():
    names = plugin_names("point-sets")
    assert (names.name, names.distribution, names.package, names.class_prefix) == \
        ("point-sets", "perceiver-point-sets", "perceiver_point_sets", "PointSets")
    assert plugin_names("perceiver-wave").name == "wave"


@pytest.mark.parametrize("name, message", [
    ("Wave", "invalid plugin name 'Wave': use lowercase letters, digits and single hyphens"),
    ("my_plugin", "(e.g. 'my-plugin')"),
    ("2d", "starting with a letter"),
    ("a--b", "single hyphens"),
    ("", "invalid plugin name ''"),
    ("x" * 41, "at most 40 characters"),
    ("image", "it is the namespace of the first-party plugin perceiver-image; choose another name"),
    ("cuda", "first-party plugin perceiver-cuda"),
    ("core", "would clash with the core's own names"),
])
def test_bad_names_are_refused_with_one_line(name, message, perceiver_cli, tmp_path):
    with pytest.raises(UserError, match=None) as info:
        plugin_names(name)
    assert message in str(info.value)
    code, out, err = perceiver_cli("plugin", "new", name, "--path", tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("perceiver: error: invalid plugin name") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_non_empty_target_is_refused(perceiver_cli, tmp_path):
    (tmp_path / "perceiver-wave").mkdir()
    assert perceiver_cli("plugin", "new", "wave", "--path", tmp_path)[0] == 0  # an empty folder is fine
    code, _, err = perceiver_cli("plugin", "new", "wave", "--path", tmp_path)
    assert code == 2
    assert err.strip() == (f"perceiver: error: {tmp_path / 'perceiver-wave'} already exists and is not empty; "
                           "remove it or choose another --path")
    code, _, err = perceiver_cli("plugin", "new", "wave", "--kind", "gpu", "--path", tmp_path)
    assert code == 2 and "invalid choice: 'gpu'" in err


@pytest.mark.parametrize("kind", ["modality", "backend"])
def test_rendered_distribution_is_complete(kind, tmp_path, perceiver_cli):
    code, out, _ = perceiver_cli("plugin", "new", "wave", "--kind", kind, "--path", tmp_path, "--json")
    assert code == 0
    created = json.loads(out)
    target = Path(created["path"])
    files = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert files == set(created["files"])
    assert {"pyproject.toml", "README.md", "perceiver_wave/__init__.py", "perceiver_wave/plugin.py",
            "tests/test_conformance.py"} <= files
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "__" + "NAME__" not in text and "__" + "PKG__" not in text and "__" + "DIST__" not in text, path
            if path.suffix == ".py":
                compile(text, str(path), "exec")
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "perceiver-wave"
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["entry-points"]["perceiver.plugins"] == {"wave": "perceiver_wave.plugin"}
    assert project["project"]["entry-points"]["perceiver.core_api"] == {"wave": "v1"}
    assert any(d.startswith("perceiver-core>=0.1,<0.2") for d in project["project"]["dependencies"])
    markers = project["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers), markers  # `@pytest.mark.slow` is registered
    tomllib.loads((target / ("perceiver_wave/pipelines.toml" if kind == "modality" else "registry.toml")).read_text())
    if kind == "modality":
        assert {"perceiver_wave/configs.py", "perceiver_wave/preprocessor.py", "perceiver_wave/position.py",
                "perceiver_wave/dataset.py", "tests/test_registry.py"} <= files
        configs = (target / "perceiver_wave" / "configs.py").read_text()
        assert "import torch" not in configs and "ComponentConfig" in configs


def _guide_tree(root: str) -> set[str]:
    """The files of the tree drawn in docs/plugins.md under `root/` (two-space indents; `#` starts a comment)."""
    import re

    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```text\n(.*?)```", guide, re.S) if b.startswith(root + "/\n")]
    assert len(blocks) == 1, f"docs/plugins.md draws no single tree of {root}/"
    files, stack = set(), []
    for line in blocks[0].splitlines()[1:]:
        entry = line.split("#")[0].rstrip()
        depth = (len(entry) - len(entry.lstrip())) // 2 - 1
        stack = stack[:depth] + [entry.strip()]
        if not entry.endswith("/"):
            files.add("".join(stack))
    return files


@pytest.mark.parametrize("kind, name", [("modality", "wave"), ("backend", "acme")])
def test_guide_draws_the_generated_tree(kind, name):
    assert _guide_tree(f"perceiver-{name}") == set(render(kind, plugin_names(name)))


def test_package_data_ships_every_template():
    """The globs in pyproject.toml's package-data match every template, so wheels of the core carry them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["perceiver_core.plugins.scaffold"]
    base = TEMPLATES.parent
    shipped = {p for g in globs for p in base.glob(g)}
    templates = set(TEMPLATES.rglob("*.tmpl"))
    assert templates and templates == shipped
    assert set(render("modality", plugin_names("x"))) and set(render("backend", plugin_names("x")))


def test_backend_scaffold_passes_its_own_tests_from_source(tmp_path):
    """Before installation: the conformance suite imports the hook module directly (entry points are skipped)."""
    target, _ = create_plugin("kit-acme", tmp_path, kind="backend")
    proc = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=target,
                PYTHONPATH=str(target))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout and "failed" not in proc.stdout


# -- the whole path: scaffold, pip install, own tests, listing, check, training, uninstall -----------------------
DIGITS_WITH_SINUSOID = """
[pipelines.digits-sinusoid]
description = "first-party data and preprocessor, the scaffolded plugin's positions"
task = { use = "classification", num_classes = 10 }
data = { use = "image.digits", batch_size = 16 }
preprocessor = { use = "image.pixels" }
position = { use = "kitwave.sinusoid", num_channels = 8 }
encoder = { use = "perceiver", num_latents = 8, latent_channels = 16, num_blocks = 1, self_attends_per_block = 1, self_attend_heads = 2 }
decoder = { use = "classification" }
"""


@pytest.mark.slow
@pytest.mark.serial  # pip-installs a plugin into this environment: other tests must not run meanwhile
def test_scaffolded_plugin_installs_passes_its_tests_and_trains(tmp_path):
    target, _ = create_plugin("kitwave", tmp_path / "src")
    dist = "perceiver-kitwave"
    pip = [sys.executable, "-m", "pip"]
    install = _run(*pip, "install", "--no-deps", "--no-build-isolation", "-q", str(target), cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    try:
        # its own tests, unchanged, against the installed distribution (entry point checks included)
        tests = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=target)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
        assert "skipped" not in tests.stdout, tests.stdout[-2000:]

        listing = _cli("plugins", "--json", cwd=tmp_path)
        assert listing.returncode == 0, listing.stderr
        report = {p["distribution"]: p for p in json.loads(listing.stdout)["plugins"]}[dist]
        assert report["status"] == "ok" and report["version"] == "0.1.0"
        assert report["components"] == ["dataset:kitwave.files", "dataset:kitwave.toy", "position:kitwave.sinusoid",
                                        "preprocessor:kitwave.frames"]

        check = _cli("plugins", "check", dist, cwd=tmp_path)
        assert check.returncode == 0 and check.stdout.startswith(f"{dist} 0.1.0: ok:"), check.stdout + check.stderr

        registry = tmp_path / "pipelines.toml"
        shipped = _cli("pipelines", "--json", cwd=tmp_path)  # the plugin's own pipeline, found once installed
        assert {"name": "kitwave-toy", "source": dist} .items() <= next(
            r for r in json.loads(shipped.stdout) if r["name"] == "kitwave-toy").items()
        registry.write_text(textwrap.dedent(DIGITS_WITH_SINUSOID))
        valid = _cli("validate", str(registry), cwd=tmp_path)
        assert valid.returncode == 0, valid.stderr
        assert "ok: 1 pipeline(s)" in valid.stdout

        out = tmp_path / "run"
        train = _cli("train", "kitwave-toy", "--out", str(out), "--max-steps", "2",
                     "--no-progress", "--json", cwd=tmp_path, timeout=600)
        assert train.returncode == 0, train.stderr[-3000:]
        assert json.loads(train.stdout)["step"] == 2
        assert (out / "model.safetensors").is_file()
    finally:
        _run(*pip, "uninstall", "-y", "-q", dist, cwd=tmp_path)
    gone = _cli("plugins", "--json", cwd=tmp_path)
    assert dist not in {p["distribution"] for p in json.loads(gone.stdout)["plugins"]}
