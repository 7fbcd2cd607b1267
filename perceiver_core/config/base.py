"""The base of every component config: unknown keys are errors, every field is documented, and numbers are numbers.

Registry files are hostile input, so a config accepts no lax coercion: an int field takes an int (not "3", 3.0 or
true), a float field takes an int or a float (TOML writes `lr = 1` as an int) but never a string or a bool, a bool
field takes true/false only; every int has an upper bound (numbers.py) and every float is finite (`lr = inf` or
`nan` is refused, not trained into an all-NaN model). This holds for every subclass, plugins' configs included,
through `__get_pydantic_core_schema__`.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from .numbers import MAX_INT

_STRICT_TYPES = ("int", "float", "bool")


def _strict_numbers(schema: Any) -> None:
    """Mark every int/float/bool leaf of a pydantic-core schema strict (containers stay lax: a TOML array still
    fills a tuple field), and bound every int that has no upper bound of its own by `MAX_INT`."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") in _STRICT_TYPES:
                node["strict"] = True
                if node["type"] == "int" and "le" not in node and "lt" not in node:
                    node["le"] = MAX_INT  # no unbounded int: 10**12 of anything is a typo or an attack
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


class ComponentConfig(BaseModel):
    """Base class for component configs. Subclass it and describe each field with `Field(description=...)`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        schema = handler(source)
        _strict_numbers(schema)
        return schema
