"""JSON schema of registry files for editors: generated from the very pydantic models that validate them
(registry/models.py), so a form the validator accepts (`encoder = "perceiver"`) the schema accepts too.

A component whose config does not import, is not a pydantic model or has no JSON schema is left out and reported
(one line naming its distribution, in `problems`): one broken plugin must not break the schema for everyone.
"""

from __future__ import annotations

from typing import Any

from .models import model_problems, registry_file_model


def registry_schema(plugin_manager=None, problems: list[str] | None = None) -> dict[str, Any]:
    """The schema; components left out are appended to `problems` (one line each) when a list is given."""
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    schema = registry_file_model(pm).model_json_schema()
    if problems is not None:
        problems.extend(f"left out of the schema: {problem}" for problem in model_problems(pm))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "perceiver registry file"
    return schema
