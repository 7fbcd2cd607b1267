"""JSON schema of registry files, built from the installed components' config models (for editors).

Each pipeline section is a union of the registered components' configs, told apart by `use`. A component whose
config does not import, is not a pydantic model or has no JSON schema is left out and reported (one line naming
its distribution, in `problems`): one broken plugin must not break the schema for everyone.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..config.train import TrainConfig
from .spec import SECTIONS


def _variant(kind: str, name: str, spec) -> tuple[Any, str | None]:
    """The schema variant of one component, or (None, why it is left out)."""
    where = f"{kind} {name!r} of {spec.distribution} {spec.version}"
    try:
        config = spec.config_model()
    except Exception as exc:  # noqa: BLE001 - plugin code
        return None, f"{where}: config {spec.config!r} does not import: {' '.join(str(exc).split())[:200]}"
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return None, (f"{where}: config {spec.config!r} is not a pydantic model class "
                      "(subclass perceiver_core.config.ComponentConfig)")
    try:
        variant = create_model(
            f"{kind}.{name}".replace(".", "_"), __base__=config, __doc__=spec.description or None,
            use=(Literal[name], Field(description=f"{spec.description} ({spec.distribution})")))
        json.dumps(variant.model_json_schema())
    except Exception as exc:  # noqa: BLE001
        return None, f"{where}: config has no JSON schema: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return variant, None


def registry_schema(plugin_manager=None, problems: list[str] | None = None) -> dict[str, Any]:
    """The schema; components left out are appended to `problems` (one line each) when a list is given."""
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    problems = problems if problems is not None else []
    fields: dict[str, Any] = {
        "description": (str, Field("", description="one line shown by `perceiver pipelines`")),
        "extends": (Optional[str], Field(None, description="name of a pipeline whose tables this one starts from")),
    }
    for section, kind in SECTIONS.items():
        variants = []
        for name in pm.registry.names(kind):
            variant, problem = _variant(kind, name, pm.registry.get(kind, name))
            if problem is not None:
                problems.append(f"left out of the schema: {problem}")
                continue
            variants.append(variant)
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
