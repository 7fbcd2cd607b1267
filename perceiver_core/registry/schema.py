"""JSON schema of registry files for editors: generated from the very pydantic models that validate them
(registry/models.py), so a form the validator accepts (`encoder = "perceiver"`) the schema accepts too."""

from __future__ import annotations

from typing import Any

from .models import registry_file_model


def registry_schema(plugin_manager=None) -> dict[str, Any]:
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    schema = registry_file_model(pm).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "perceiver registry file"
    return schema
