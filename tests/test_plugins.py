"""Plugin loading with real, pip-installed throwaway distributions: broken ones are reported with distribution,
version and cause; the rest keeps working; strict mode raises; autoloading can be turned off."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from perceiver_core import PluginError, hookimpl
from perceiver_core.plugins.manager import PluginManager

GOOD_HOOKS = """
from perceiver_core import hookimpl

@hookimpl
def perceiver_register_components(registry):
    registry.add("position", "demo.none", factory="perceiver_core.model.positions.none:NoPositionEncoding",
                 config="perceiver_core.config.positions:NoPositionConfig", description="a third-party name")
"""

PLUGINS = {
    "good": ("v1", GOOD_HOOKS),
    "broken-import": ("v1", "import a_module_that_does_not_exist\n"),
    "hook-typo": ("v1", """
from perceiver_core import hookimpl

@hookimpl
def perceiver_register_componets(registry):
    pass
"""),
    "bad-signature": ("v1", """
from perceiver_core import hookimpl

@hookimpl
def perceiver_register_components(registry, device):
    pass
"""),
    "duplicate": ("v1", """
from perceiver_core import hookimpl

@hookimpl
def perceiver_register_components(registry):
    registry.add("position", "fourier", factory="x:y", config="x:Y")
    registry.add("position", "dup.extra", factory="perceiver_core.model.positions.none:NoPositionEncoding",
                 config="perceiver_core.config.positions:NoPositionConfig")
"""),
    "wrong-api": ("v99", GOOD_HOOKS.replace("demo.none", "never.registered")),
}


@pytest.fixture(scope="module")
def plugin_site(plugin_site_factory):
    """The throwaway distributions, pip-installed (built by setuptools) into their own site folder."""
    return plugin_site_factory("dists", PLUGINS)


def _env(site: Path, **extra) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **extra}


def test_broken_plugins_are_reported_and_the_rest_works(cli, plugin_site):
    result = cli("plugins", "--json", env=_env(plugin_site))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by_dist = {p["distribution"]: p for p in data["plugins"]}
    assert by_dist["perceiver-test-good"]["status"] == "ok"
    assert "position:demo.none" in by_dist["perceiver-test-good"]["components"]
    assert by_dist["perceiver-image"]["status"] == "ok"

    def error(dist):
        p = by_dist[dist]
        assert p["version"] == "1.2.3"
        return " ".join(p["errors"])

    assert "failed to import 'ptest_broken_import.plugin'" in error("perceiver-test-broken-import")
    assert "ModuleNotFoundError" in error("perceiver-test-broken-import")
    assert "unknown hook 'perceiver_register_componets' (did you mean 'perceiver_register_components'?)" \
        in error("perceiver-test-hook-typo")
    assert "invalid hook" in error("perceiver-test-bad-signature") and "device" in error("perceiver-test-bad-signature")
    dup = error("perceiver-test-duplicate")
    assert "position 'fourier' is registered by both perceiver-core 0.1.0 and perceiver-test-duplicate 1.2.3" in dup
    assert "position:dup.extra" in by_dist["perceiver-test-duplicate"]["components"]  # its other names still work
    assert by_dist["perceiver-test-wrong-api"]["status"] == "refused"
    assert "written for core API 99" in error("perceiver-test-wrong-api")
    # every problem is also listed with the distribution and version
    assert any(p.startswith("plugin 'hook-typo' from perceiver-test-hook-typo 1.2.3") for p in data["problems"])
    # refused before import: the wrong-API plugin's component was never registered
    comps = json.loads(cli("components", "--json", env=_env(plugin_site)).stdout)
    names = {c["name"] for c in comps}
    assert "demo.none" in names and "never.registered" not in names
    assert next(c for c in comps if c["name"] == "fourier")["distribution"] == "perceiver-core"


def test_cli_still_validates_and_lists_pipelines_with_broken_plugins(cli, plugin_site):
    result = cli("validate", env=_env(plugin_site))
    assert result.returncode == 0, result.stderr
    assert "digits" in cli("pipelines", env=_env(plugin_site)).stdout


def test_strict_mode_raises_one_line(cli, plugin_site):
    result = cli("plugins", env=_env(plugin_site, PERCEIVER_STRICT_PLUGINS="1"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perceiver: error: plugin '")
    assert "Traceback" not in result.stderr


def test_autoload_can_be_disabled(cli, plugin_site):
    data = json.loads(cli("plugins", "--json", env=_env(plugin_site, PERCEIVER_DISABLE_PLUGIN_AUTOLOAD="1")).stdout)
    assert [p["distribution"] for p in data["plugins"]] == ["perceiver-core"]


def test_in_process_registration_and_strict_duplicate():
    class Plugin:
        @staticmethod
        @hookimpl
        def perceiver_register_components(registry):
            registry.add("task", "classification", factory="x:y", config="x:Y")

    pm = PluginManager(autoload=False, strict=False)
    report = pm.register(Plugin, name="p", distribution="dist-a", version="9")
    assert report.status == "error" and "registered by both perceiver-core" in report.errors[0]
    with pytest.raises(PluginError, match=r"plugin 'p' from dist-a 9 task 'classification' is registered by both"):
        PluginManager(autoload=False, strict=True).register(Plugin, name="p", distribution="dist-a", version="9")


def test_listing_imports_no_torch(cli):
    probe = cli("plugins", "--json", python=[sys.executable, "-X", "importtime"])
    assert probe.returncode == 0
    data = json.loads(probe.stdout)
    dists = {p["distribution"]: p for p in data["plugins"]}
    assert {"perceiver-image", "perceiver-cpu"} <= set(dists)
    assert dists["perceiver-image"]["version"] == "0.1.0" and "preprocessor:image.pixels" in dists["perceiver-image"]["components"]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in probe.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "numpy" not in imported


def test_missing_plugin_is_one_line_with_the_pip_command(cli, python_without, tmp_path):
    python = python_without("perceiver-image", "perceiver_image")
    hint = f"pip install {Path(__file__).parents[1] / 'plugins' / 'perceiver-image'}"  # what really installs it
    result = cli("train", "digits", "--out", str(tmp_path / "run"), python=python)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the pipeline 'digits' ships with the plugin perceiver-image, which is not installed" in lines[0]
    assert hint in lines[0]
    # a [requires] table names the plugin with the file and line
    reg = tmp_path / "r.toml"
    digits = (Path(__file__).parents[1] / "plugins/perceiver-image/perceiver_image/pipelines.toml").read_text()
    digits = digits.replace("[pipelines.digits", "[pipelines.mine").replace('extends = "digits"', 'extends = "mine"')
    reg.write_text('[requires]\nperceiver-image = ">=0.1"\n\n' + digits)
    result = cli("validate", str(reg), python=python)
    assert result.returncode == 2
    assert f"{reg}:2: requires.perceiver-image: the plugin perceiver-image is required but not installed: {hint}" \
        in result.stderr
    # without the [requires] table the component itself names its plugin
    reg.write_text(digits)
    result = cli("validate", str(reg), python=python)
    assert result.returncode == 2
    assert f"dataset 'image.digits' is provided by the plugin perceiver-image, which is not installed: {hint}" \
        in result.stderr
