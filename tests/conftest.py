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
