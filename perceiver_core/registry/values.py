"""Registry values and key paths as a user reads them: the nesting bound, key paths as TOML writes them, values
shortened, pydantic errors as one plain message with what was expected (shared by the file reader and `--set`)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from ..plugins.components import suggest

MAX_DEPTH = 16  # tables and arrays nested in one another (a real pipeline needs about 7)


def too_deep(data: Any, limit: int = MAX_DEPTH) -> list[str] | None:
    """The key path of the first value nested more than `limit` levels deep, or None (iterative: no recursion)."""
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > limit:
            return path
        if isinstance(node, dict):
            stack.extend((v, [*path, str(k)]) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, [*path, str(i)]) for i, v in enumerate(node))
    return None


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(parts: list[str]) -> str:
    """A key path as TOML writes it: bare keys as they are, others quoted (a key may hold dots or newlines)."""
    parts = [p if len(p) <= 80 else f"{p[:60]}...({len(p):,} characters)" for p in parts]
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p) for p in parts)


def decode_error_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def pydantic_message(err: dict, loc: list[str], model: type[BaseModel]) -> str:
    """One pydantic error as a plain message with what was expected."""
    fields = model.model_fields
    field_name = loc[0] if loc else None
    if err["type"] == "extra_forbidden":
        return f"unknown key{suggest(field_name, fields)}; {model.__name__} accepts: {', '.join(fields) or 'no keys'}"
    info = fields.get(field_name) if field_name else None
    expected = ""
    if info is not None:
        expected = f" (expected {type_name(info.annotation)}"
        expected += f": {info.description})" if info.description else ")"
    if err["type"] == "missing":
        return f"missing required key{expected}"
    given = err.get("input")
    shown = f"; got {short(given)}" if not isinstance(given, dict) else ""
    return f"{err['msg']}{shown}{expected}"


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("NoneType", "None")
