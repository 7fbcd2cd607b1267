"""JSON schema of registry files, built from the installed components' config models (for editors).

Each pipeline section is a union of the registered components' configs, told apart by `use`.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, create_model

from ..config.train import TrainConfig
from .spec import SECTIONS


def registry_schema(plugin_manager=None) -> dict[str, Any]:
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    fields: dict[str, Any] = {
        "description": (str, Field("", description="one line shown by `perceiver pipelines`")),
        "extends": (Optional[str], Field(None, description="name of a pipeline whose tables this one starts from")),
    }
    for section, kind in SECTIONS.items():
        variants = []
        for name in pm.registry.names(kind):
            spec = pm.registry.get(kind, name)
            variants.append(create_model(
                f"{kind}.{name}".replace(".", "_"), __base__=spec.config_model(),
                __doc__=spec.description or None,
                use=(Literal[name], Field(description=f"{spec.description} ({spec.distribution})"))))
        if not variants:
            continue
        union = variants[0] if len(variants) == 1 else Union[tuple(variants)]  # noqa: UP007
        fields[section] = (Optional[union], Field(None, description=f"the {kind} (`use` names it)"))
    fields["train"] = (Optional[TrainConfig], Field(None, description="training loop settings"))
    fields["backend"] = (str, Field("auto", description="hardware backend: auto, or an installed backend's name"))
    pipeline = create_model("Pipeline", __config__=ConfigDict(extra="forbid"), **fields)
    registry = create_model(
        "RegistryFile", __config__=ConfigDict(extra="forbid"),
        requires=(dict[str, str], Field(default_factory=dict, description="distribution = version specifier")),
        pipelines=(dict[str, pipeline], Field(default_factory=dict, description="named pipelines")))
    schema = registry.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "perceiver registry file"
    return schema
