"""pytest fixtures for plugin authors (loaded automatically once perceiver-core is installed).

- `plugin_manager`: an isolated PluginManager with autoloading off (only the built-in components) and strict
  mode on, so a broken hook raises instead of being reported.
- `register_plugin`: register a plugin object (module, class or namespace with hook functions) into it; returns
  the plugin's report (its components, backends, errors).
- `build_context`: a factory of `BuildContext`s, for building components by hand.
- `perceiver_cli`: run the `perceiver` command in-process; returns (exit code, stdout, stderr).

This module imports no torch: it is loaded in every pytest session of an environment with perceiver-core.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def plugin_manager():
    from perceiver_core.plugins.manager import PluginManager

    return PluginManager(autoload=False, strict=True)


@pytest.fixture
def register_plugin(plugin_manager):
    def register(plugin, name: str = "test-plugin", distribution: str = "test-plugin", version: str = "0"):
        return plugin_manager.register(plugin, name=name, distribution=distribution, version=version)

    return register


@pytest.fixture
def build_context():
    """`build_context(dataset={...}, index_shape=(8, 8), ...)` -> a BuildContext."""
    from perceiver_core.interfaces import BuildContext

    def make(**fields):
        ctx = BuildContext(**fields)
        if ctx.index_shape is not None:
            ctx.index_shape = tuple(ctx.index_shape)
        return ctx

    return make


@pytest.fixture
def perceiver_cli(capsys, monkeypatch):
    """Run `perceiver ARGS...` in this process with a fresh plugin manager: (exit code, stdout, stderr)."""
    from perceiver_core.plugins import manager as plugins
    from perceiver_core.commands.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(plugins, "_DEFAULT", None)
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return code, out, err

    return run
