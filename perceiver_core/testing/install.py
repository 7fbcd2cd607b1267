"""Installing distributions the way a user does, for "installs alone from wheels" tests.

A plugin's promise is that it works installed from its wheel into an environment that has never seen the
checkout. These helpers build wheels from source folders and make a fresh venv that sees this environment's
third-party packages (torch, numpy, ...: no download, no multi-GB reinstall) but no perceiver distribution, so
the test then installs the wheels it wants with `pip --no-index` and runs commands from an empty folder:

    wheels = build_wheels(tmp_path / "wheels", core_dir, plugin_dir)
    venv = isolated_venv(tmp_path)
    run_clean([venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--find-links", wheels, "my-plugin"],
              cwd=tmp_path)

Standard library only: importing it imports no torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def run_clean(cmd, cwd, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command without this environment's PYTHON*, PERCEIVER_* and VIRTUAL_ENV settings (one torch thread),
    so that what it does depends on the installed wheels only; output captured as text."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PERCEIVER_", "VIRTUAL_ENV"))}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env={**clean, "OMP_NUM_THREADS": "1", **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def build_wheels(out: Path, *projects: Path) -> Path:
    """Wheels of the given source folders (no dependencies, no build isolation: offline) into `out`."""
    result = run_clean([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out,
                        *projects], cwd=Path(out).parent)
    if result.returncode != 0:
        raise AssertionError(f"building wheels of {', '.join(map(str, projects))} failed:\n{result.stderr}")
    return Path(out)


def isolated_venv(base: Path) -> Path:
    """A fresh venv under `base` that sees this environment's third-party packages (through a .pth file over a
    folder of symlinks) but no perceiver distribution and no editable install."""
    farm = Path(base) / "deps"
    farm.mkdir()
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.lower().startswith(("perceiver", "__editable__")):
            (farm / entry.name).symlink_to(entry)
    venv = Path(base) / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    Path(purelib, "_deps.pth").write_text(f"{farm}\n")
    return venv
