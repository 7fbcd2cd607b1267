"""The whole extension surface of the framework: three hooks.

A plugin is a module with functions named like the specs below, decorated with `perceiver_core.hookimpl`,
exposed through the entry point group `perceiver.plugins` and declaring the core API version it was written for
in the group `perceiver.core_api`:

    [project.entry-points."perceiver.plugins"]
    image = "perceiver_image.plugin"

    [project.entry-points."perceiver.core_api"]
    image = "v1"

Registration is a callback: the hook receives a registry and adds components to it. Components are named by
"module:attr" strings so that listing them, validating registry files and printing the schema import neither
torch nor the plugin's heavy code. Built-in components register through these very hooks.
"""

from __future__ import annotations

import pluggy

PROJECT = "perceiver"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def perceiver_register_components(registry) -> None:
    """Add components with `registry.add(kind, name, factory=..., config=..., description=...)`.

    kind is one of "preprocessor", "position", "encoder", "decoder", "task", "dataset". `factory` is a callable
    (or "module:attr") taking `(config, context)` and returning the component; `config` is a pydantic model
    (or "module:attr") with `extra="forbid"` that validates the component's table in a registry file.
    """


@hookspec
def perceiver_register_backends(registry) -> None:
    """Add hardware backends with `registry.add_backend(name, factory=..., priority=..., description=...)`.

    `backend = "auto"` picks the available backend with the highest priority.
    """


@hookspec
def perceiver_register_pipelines(registry) -> None:
    """Ship registry files with the plugin: `registry.add_registry_file("perceiver_image", "pipelines.toml")`.

    The file is package data of the named package (read with importlib.resources, so it works from a wheel and
    from a source checkout alike); its pipelines and presets appear in `perceiver pipelines` with the plugin's
    distribution as their source, and `perceiver train NAME` finds them without any registry file of the user's.
    Nothing is imported or read until a registry is loaded.
    """
