"""The whole extension surface of the framework: two hooks.

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
