"""The registry of components and backends that plugins fill through the hooks.

Entries hold "module:attr" references (or the objects themselves) and are resolved only when used, so that
listing and validation stay free of torch.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

KINDS = ("preprocessor", "position", "encoder", "decoder", "task", "dataset")

# Namespaces of first-party plugins: lets an error name the distribution to install for a missing component.
FIRST_PARTY_NAMESPACES = {
    "image.": "perceiver-image",
    "text.": "perceiver-text",
    "audio.": "perceiver-audio",
    "video.": "perceiver-video",
    "pointcloud.": "perceiver-pointcloud",
    "multimodal.": "perceiver-multimodal",
}
FIRST_PARTY_BACKENDS = {"cpu": "perceiver-cpu", "cuda": "perceiver-cuda", "mps": "perceiver-mps"}


def resolve_ref(ref: str | Any) -> Any:
    """Import "package.module:attr.sub" and return the attribute; objects pass through unchanged."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attr = ref.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def suggest(name: str, choices) -> str:
    """A ' (did you mean X?)' suffix, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def install_hint(distribution: str) -> str:
    return f"pip install {distribution} (from a source checkout: pip install ./plugins/{distribution})"


@dataclass
class ComponentSpec:
    kind: str
    name: str
    factory: str | Callable[..., Any]
    config: str | type
    description: str = ""
    distribution: str = "?"
    version: str = "?"

    def config_model(self) -> type:
        return resolve_ref(self.config)

    def factory_fn(self) -> Callable[..., Any]:
        return resolve_ref(self.factory)

    def as_dict(self) -> dict[str, Any]:
        ref = self.factory if isinstance(self.factory, str) else f"{self.factory.__module__}:{self.factory.__qualname__}"
        return {"kind": self.kind, "name": self.name, "description": self.description,
                "distribution": self.distribution, "version": self.version, "factory": ref}


@dataclass
class BackendSpec:
    name: str
    factory: str | Callable[..., Any]
    priority: int = 0
    description: str = ""
    distribution: str = "?"
    version: str = "?"

    def create(self):
        return resolve_ref(self.factory)()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "priority": self.priority, "description": self.description,
                "distribution": self.distribution, "version": self.version}


class DuplicateNameError(Exception):
    """Raised inside a registration when a name is already taken; the plugin manager reports it."""


@dataclass
class ComponentRegistry:
    """What plugins register into. One instance per plugin manager."""

    components: dict[tuple[str, str], ComponentSpec] = field(default_factory=dict)
    backends: dict[str, BackendSpec] = field(default_factory=dict)
    # Set by the plugin manager while a plugin's hook runs, so entries record where they came from.
    current_distribution: str = "?"
    current_version: str = "?"
    errors: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, *, factory, config, description: str = "") -> None:
        """Register a component. A name taken by another distribution is reported, not overwritten."""
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}{suggest(kind, KINDS)}; kinds are {', '.join(KINDS)}")
        if not name or not isinstance(name, str):
            raise ValueError("a component name must be a non-empty string")
        existing = self.components.get((kind, name))
        if existing is not None:
            self.errors.append(
                f"{kind} {name!r} is registered by both {existing.distribution} {existing.version} and "
                f"{self.current_distribution} {self.current_version}; the one from {existing.distribution} is kept"
            )
            return
        self.components[(kind, name)] = ComponentSpec(kind, name, factory, config, description,
                                                      self.current_distribution, self.current_version)

    def add_backend(self, name: str, *, factory, priority: int = 0, description: str = "") -> None:
        existing = self.backends.get(name)
        if existing is not None:
            self.errors.append(
                f"backend {name!r} is registered by both {existing.distribution} {existing.version} and "
                f"{self.current_distribution} {self.current_version}; the one from {existing.distribution} is kept"
            )
            return
        self.backends[name] = BackendSpec(name, factory, priority, description,
                                          self.current_distribution, self.current_version)

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The component, or a MissingComponentError that says what to install or what was meant."""
        from ..errors import MissingComponentError

        spec = self.components.get((kind, name))
        if spec is not None:
            return spec
        for prefix, dist in FIRST_PARTY_NAMESPACES.items():
            if name.startswith(prefix):
                return _raise(MissingComponentError(
                    f"{kind} {name!r} is provided by the plugin {dist}, which is not installed: {install_hint(dist)}"))
        names = self.names(kind)
        listing = ", ".join(names) if names else "none"
        raise MissingComponentError(f"unknown {kind} {name!r}{suggest(name, names)}; registered: {listing}")

    def names(self, kind: str) -> list[str]:
        return sorted(n for (k, n) in self.components if k == kind)


def _raise(exc: Exception):
    raise exc
