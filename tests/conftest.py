"""Shared helpers: run the CLI as a user would (a subprocess), write registry files, hide a distribution."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, python: list[str] | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """`perceiver ARGS` in a fresh interpreter; returns the completed process (text mode)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = (python or [sys.executable]) + ["-m", "perceiver_core", *args]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_registry(tmp_path):
    def write(text: str, name: str = "registry.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path
    return write


def site_packages() -> Path:
    return Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))


@pytest.fixture
def python_without(tmp_path):
    """An interpreter command that sees this environment's packages minus some distributions (really absent:
    neither their dist-info nor their code is on the path), built from links to the other site-packages entries."""
    def make(*packages: str) -> list[str]:
        farm = tmp_path / "site"
        farm.mkdir()
        hidden = tuple(p.replace("-", "_").lower() for p in packages)
        for entry in site_packages().iterdir():
            name = entry.name.lower().replace("-", "_")
            if any(name.startswith(h) or name.startswith(f"__editable__.{h}") or
                   name.startswith(f"__editable___{h}") for h in hidden):
                continue
            (farm / entry.name).symlink_to(entry)
        boot = f"import sys, site; sys.path[:] = [p for p in sys.path if 'site-packages' not in p]; " \
               f"site.addsitedir({str(farm)!r}); sys.argv[0] = 'perceiver'; " \
               f"from perceiver_core.commands.cli import main; args = sys.argv[1:]; " \
               f"args = args[2:] if args[:2] == ['-m', 'perceiver_core'] else args; raise SystemExit(main(args))"
        return [sys.executable, "-c", boot]
    return make


def write_plugin_dist(root: Path, name: str, api: str, code: str) -> Path:
    """A throwaway plugin distribution `perceiver-test-NAME` 1.2.3 (pyproject + package) whose entry point module
    holds `code`, declaring core API `api`."""
    pkg = "ptest_" + name.replace("-", "_")
    d = root / name
    (d / pkg).mkdir(parents=True)
    (d / pkg / "__init__.py").write_text("")
    (d / pkg / "plugin.py").write_text(textwrap.dedent(code))
    (d / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "perceiver-test-{name}"
        version = "1.2.3"
        [project.entry-points."perceiver.plugins"]
        {name} = "{pkg}.plugin"
        [project.entry-points."perceiver.core_api"]
        {name} = "{api}"
        [tool.setuptools]
        packages = ["{pkg}"]
        """))
    return d


@pytest.fixture(scope="session")
def plugin_site_factory(tmp_path_factory):
    """make(label, {name: (api, code)}) -> a site folder with those distributions pip-installed (built by
    setuptools, as a user's would be); put it on PYTHONPATH to make them installed plugins."""
    def make(label: str, plugins: dict[str, tuple[str, str]]) -> Path:
        root = tmp_path_factory.mktemp(label)
        dirs = [str(write_plugin_dist(root, name, api, code)) for name, (api, code) in plugins.items()]
        target = root / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(target), *dirs], check=True, capture_output=True)
        return target
    return make
