"""Validating the `inputs.<name>` tables of a multi-input pipeline (the part of `file._validate` that is theirs).

    [pipelines.digits-label.inputs.image]
    preprocessor = { use = "image.pixels" }
    position = { use = "fourier", num_bands = 4 }

    [pipelines.digits-label.inputs.label]
    preprocessor = { use = "label", num_classes = 10 }
    mask_probability = 0.5

Each input's `preprocessor` is required and its `position` defaults to none; the tables are checked like the
one-input sections (the `use` names first, with install hints, then every config field at once).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import MissingComponentError
from .spec import INPUT_NAME_PATTERN, INPUT_SECTIONS, OPTIONAL_SECTIONS, SECTIONS, ComponentChoice, InputChoice, \
    InputOptions

Fail = Callable[[list[str], str], None]


def check_inputs(table: dict[str, Any], pm, fail: Fail) -> tuple[dict[str, Any] | None, dict[tuple[str, str], Any]]:
    """The `inputs` table with shorthands expanded and defaults filled in (None when the pipeline has one input),
    and the component spec of each (input, section); problems go to `fail(key path, message)`."""
    raw = table.get("inputs")
    if raw is None:
        return None, {}
    both = [s for s in INPUT_SECTIONS if s in table]
    if both:
        fail([both[0]], f"a pipeline with `inputs` has its {' and '.join(INPUT_SECTIONS)} in each inputs.<name> "
                        f"table; remove the top-level {both[0]} (or the inputs table for a one-input pipeline)")
    if not isinstance(raw, dict) or not raw:
        fail(["inputs"], "must be a table of named inputs: [pipelines.NAME.inputs.image] with preprocessor = "
                         "{ use = ... } and position = { use = ... }")
        return None, {}
    checked: dict[str, Any] = {}
    specs: dict[tuple[str, str], Any] = {}
    for name, entry in raw.items():
        if not re.match(INPUT_NAME_PATTERN, str(name)):
            fail(["inputs", name], "an input name must be a lower-case identifier (a-z, 0-9, _; 32 characters at "
                                   "most), e.g. image, audio, label")
            continue
        if not isinstance(entry, dict):
            fail(["inputs", name], "must be a table with preprocessor = { use = ... } (and position, mask options)")
            continue
        entry = dict(entry)
        for section in INPUT_SECTIONS:
            kind = SECTIONS[section]
            value = entry.get(section, OPTIONAL_SECTIONS.get(section))
            if value is None:
                fail(["inputs", name, section], f"missing: every input needs {section} = {{ use = \"<{kind} "
                                                f"name>\", ... }}; registered {kind}s: "
                                                f"{', '.join(pm.registry.names(kind)) or 'none'}")
                continue
            if isinstance(value, str):
                value = {"use": value}
            if not isinstance(value, dict) or not isinstance(value.get("use"), str):
                fail(["inputs", name, section], f"expected a table with a `use` key naming a {kind}")
                continue
            try:
                specs[(name, section)] = pm.registry.get(kind, value["use"])
            except MissingComponentError as exc:
                fail(["inputs", name, section, "use"], str(exc))
                continue
            entry[section] = value
        checked[name] = entry
    return checked, specs


def error_model(loc: list[str], checked_inputs: dict[str, Any] | None, specs: dict[tuple[str, str], Any]):
    """For a pydantic error inside `inputs`: (key path without the union's tag, the config model that explains
    it), or None when the error is not in an input's component."""
    if len(loc) < 3 or loc[0] != "inputs" or not checked_inputs:
        return None
    name, section = loc[1], loc[2]
    if section not in INPUT_SECTIONS:
        return loc, InputOptions
    spec = specs.get((name, section))
    if spec is None:
        return None
    use = checked_inputs.get(name, {}).get(section, {}).get("use")
    if len(loc) > 3 and loc[3] == use:
        loc = [*loc[:3], *loc[4:]]
    return loc, spec.config_model()


def input_choices(validated_inputs: dict[str, Any], specs: dict[tuple[str, str], Any]) -> dict[str, InputChoice]:
    """The validated input tables as `InputChoice`s, sorted by name."""
    out: dict[str, InputChoice] = {}
    for name in sorted(validated_inputs):
        entry = validated_inputs[name]
        parts = {}
        for section in INPUT_SECTIONS:
            value = getattr(entry, section)
            config = specs[(name, section)].config_model().model_validate(value.model_dump(exclude={"use"}))
            parts[section] = ComponentChoice(value.use, config)
        options = InputOptions.model_validate(entry.model_dump(include=set(InputOptions.model_fields)))
        out[name] = InputChoice(parts["preprocessor"], parts["position"], options)
    return out
