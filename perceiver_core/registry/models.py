"""One pydantic model per pipeline table, built from the installed components' config models.

Each section (`task`, `data`, `preprocessor`, `position`, `encoder`, `decoder`) is a union of the registered
components' configs told apart by `use` (a discriminator), and also accepts the shorthand `encoder = "perceiver"`.
The same models validate registry files (every error of a pipeline at once, with its key path) and generate the
JSON schema editors use (`perceiver schema`), so the two cannot disagree.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ..config.train import InitFromConfig, TrainConfig
from ..plugins.components import FIRST_PARTY_BACKENDS
from .spec import INPUT_NAME_PATTERN, INPUT_SECTIONS, SECTIONS, InputOptions, PackingConfig


def _shorthand(value: Any) -> Any:
    return {"use": value} if isinstance(value, str) else value


def _init_shorthand(value: Any) -> Any:
    return {"checkpoint": value} if isinstance(value, str) else value


def component_variant(kind: str, name: str, spec) -> tuple[Any, str | None]:
    """The model of one component's table (its config + `use: Literal[name]`), or (None, why it is left out): a
    config that does not import, is not a pydantic model or has no JSON schema is one broken plugin, and must not
    break validation and the schema for everyone else."""
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


def section_type(pm, kind: str, problems: list[str]):
    """The type of one section: a discriminated union of `kind`'s registered configs (or None: none usable).
    Components left out are appended to `problems`, one line each."""
    variants, names = [], []
    for name in pm.registry.names(kind):
        variant, problem = component_variant(kind, name, pm.registry.get(kind, name))
        if problem is not None:
            problems.append(problem)
            continue
        variants.append(variant)
        names.append(name)
    if not variants:
        return None
    if len(variants) == 1:
        union = variants[0]
    else:
        union = Annotated[Union[tuple(variants)], Field(discriminator="use")]  # noqa: UP007
    literal = Literal[tuple(names)]
    return Annotated[union, BeforeValidator(_shorthand, json_schema_input_type=Union[literal, union])]  # noqa: UP007


def backend_names(pm) -> list[str]:
    return ["auto", *sorted(set(pm.registry.backends) | set(FIRST_PARTY_BACKENDS))]


def pipeline_model(pm) -> type[BaseModel]:
    """The model of one `[pipelines.NAME]` table (sections optional: a pipeline may take them from `extends`)."""
    key = (len(pm.registry.components), len(pm.registry.backends))
    cached = getattr(pm.registry, "_pipeline_model", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    problems: list[str] = []
    fields: dict[str, Any] = {
        "description": (str, Field("", description="one line shown by `perceiver pipelines`")),
        "extends": (Optional[str], Field(None, description="name of a pipeline whose tables this one starts from")),
        "requires": (Optional[dict[str, str]], Field(None, description="distribution = version specifier, for this "
                                                                       "pipeline only")),
    }
    input_fields: dict[str, Any] = {}
    for section, kind in SECTIONS.items():
        kind_type = section_type(pm, kind, problems)
        if kind_type is not None:
            fields[section] = (Optional[kind_type], Field(None, description=f"the {kind} (`use` names it)"))
            if section in INPUT_SECTIONS:
                input_fields[section] = (Optional[kind_type], Field(None, description=f"this input's {kind}"))
    one_input = create_model("Input", __base__=InputOptions, __doc__="one input of a multi-input pipeline: its "
                             "preprocessor, position encoding (default none) and masking", **input_fields)
    name = Annotated[str, Field(pattern=INPUT_NAME_PATTERN)]
    fields["inputs"] = (Optional[dict[name, one_input]], Field(
        None, description="several inputs packed into one byte array, in sorted name order (instead of "
                          "preprocessor and position): inputs.<name> = { preprocessor = ..., position = ... }"))
    fields["packing"] = (Optional[PackingConfig], Field(None, description="how several inputs are packed"))
    fields["train"] = (Optional[TrainConfig], Field(None, description="training loop settings"))
    backends = Literal[tuple(backend_names(pm))]
    fields["backend"] = (backends, Field("auto", description="hardware backend: auto (the best available), or a name"))
    init = Annotated[InitFromConfig,
                     BeforeValidator(_init_shorthand, json_schema_input_type=Union[str, InitFromConfig])]  # noqa: UP007
    fields["init_from"] = (Optional[init], Field(None, description="start from a checkpoint's weights (fine-tuning)"))
    model = create_model("Pipeline", __config__=ConfigDict(extra="forbid"), **fields)
    pm.registry._pipeline_model = (key, model, problems)
    return model


def model_problems(pm) -> list[str]:
    """Components left out of the pipeline model (broken config classes), one line each."""
    pipeline_model(pm)
    return list(pm.registry._pipeline_model[2])


def registry_file_model(pm) -> type[BaseModel]:
    return create_model(
        "RegistryFile", __config__=ConfigDict(extra="forbid"),
        requires=(dict[str, str], Field(default_factory=dict, description="distribution = version specifier "
                                                                          "(for this file's pipelines)")),
        pipelines=(dict[str, pipeline_model(pm)], Field(default_factory=dict, description="named pipelines")))
