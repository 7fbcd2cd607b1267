"""Two plugins shipping a pipeline of the same name: neither wins silently. The bare name is one error naming both
distributions and files and how to choose; each stays reachable as DISTRIBUTION:NAME; a plugin's own `extends` of
the name means its own; a pipeline of the user's file settles it, and overriding is shown by `pipelines` and
`validate`."""

from __future__ import annotations

import sys

import pytest

from perceiver_core import RegistryError, hookimpl, load_registry

PLUGIN_FILE = """
[pipelines.shared]
description = "the {x} plugin's"
extends = "multimodal-kinetics"
train = {{ seed = {seed} }}

[pipelines.{x}-small]
extends = "shared"
description = "{x}'s own variant"
"""


@pytest.fixture
def two_plugins(tmp_path, monkeypatch, plugin_manager):
    """Distributions perceiver-a and perceiver-b, each shipping a registry file with a pipeline named `shared`."""
    for x, seed in (("a", 1), ("b", 2)):
        package = tmp_path / f"conflict_{x}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "pipelines.toml").write_text(PLUGIN_FILE.format(x=x, seed=seed))

        class Plugin:
            @staticmethod
            @hookimpl
            def perceiver_register_pipelines(registry, _package=f"conflict_{x}"):
                registry.add_registry_file(_package)

        plugin_manager.register(Plugin, name=x, distribution=f"perceiver-{x}", version="1.0")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield plugin_manager
    for x in "ab":
        sys.modules.pop(f"conflict_{x}", None)


def test_the_bare_name_names_both_plugins_and_how_to_choose(two_plugins, tmp_path):
    registry = load_registry(include_default=False, plugin_manager=two_plugins)
    with pytest.raises(RegistryError) as info:
        registry.resolve("shared", plugin_manager=two_plugins)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the pipeline 'shared' is shipped by two plugins, perceiver-a (")
    assert str(tmp_path / "conflict_a" / "pipelines.toml") in message
    assert str(tmp_path / "conflict_b" / "pipelines.toml") in message
    assert "name the one you mean, perceiver-a:shared or perceiver-b:shared" in message
    assert registry.resolve("perceiver-a:shared", plugin_manager=two_plugins).train.seed == 1
    assert registry.resolve("perceiver-b:shared", plugin_manager=two_plugins).train.seed == 2
    # each plugin's own variant extends its own `shared`
    assert registry.resolve("a-small", plugin_manager=two_plugins).train.seed == 1
    assert registry.resolve("b-small", plugin_manager=two_plugins).train.seed == 2
    rows = {r["name"]: r for r in registry.describe()}
    assert rows["shared"]["source"] == "ambiguous: perceiver-a, perceiver-b"
    assert rows["perceiver-a:shared"]["description"] == "the a plugin's"


def test_a_users_file_settles_it_and_the_override_is_shown(two_plugins, tmp_path, monkeypatch, capsys):
    from perceiver_core.commands.cli import main
    from perceiver_core.plugins import manager

    user = tmp_path / "mine.toml"
    user.write_text('[pipelines.shared]\nextends = "perceiver-b:shared"\ndescription = "mine"\n')
    registry = load_registry([user], include_default=False, plugin_manager=two_plugins)
    assert registry.resolve("shared", plugin_manager=two_plugins).train.seed == 2
    monkeypatch.setattr(manager, "_DEFAULT", two_plugins)
    monkeypatch.chdir(tmp_path)  # no ./registry.toml
    assert main(["pipelines", "--registry", str(user)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("shared ")]
    assert listed == [f"shared                   mine  [{user}; overrides perceiver-a; overrides perceiver-b]"]
    assert main(["validate", str(user), "--no-build"]) == 0
    err = capsys.readouterr().err
    assert f"perceiver: note: pipeline 'shared' of {user} overrides the one of perceiver-a (" in err
    # without the user's file, validating the installed pipelines reports the conflict
    assert main(["validate", "--no-build"]) == 2
    assert "the pipeline 'shared' is shipped by two plugins" in capsys.readouterr().err
