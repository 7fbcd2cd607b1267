"""pytest fixtures for plugin authors (loaded automatically once perceiver-core is installed).

- `plugin_manager`: an isolated PluginManager with autoloading off (only the built-in components).
- `register_plugin`: register a plugin object (module, class or namespace with hook functions) into it.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def plugin_manager():
    from perceiver_core.plugins import PluginManager

    return PluginManager(autoload=False, strict=True)


@pytest.fixture
def register_plugin(plugin_manager):
    def register(plugin, name: str = "test-plugin", distribution: str = "test-plugin", version: str = "0"):
        return plugin_manager.register(plugin, name=name, distribution=distribution, version=version)

    return register
