"""The registry of components and backends that plugins fill through the hooks.

Entries hold "module:attr" references (or the objects themselves) and are resolved only when used, so that
listing and validation stay free of torch.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
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
# Pipelines and presets that first-party plugins ship: lets "no pipeline named digits" name what to install.
FIRST_PARTY_PIPELINES = {
    "digits": "perceiver-image", "digits-permuted": "perceiver-image", "imagenet-fourier": "perceiver-image",
    "imagenet-learned": "perceiver-image", "imagenet-conv": "perceiver-image",
    "text-mlm-tiny": "perceiver-text", "mlm-bytes": "perceiver-text",
    "wine": "perceiver-tabular", "breast-cancer": "perceiver-tabular",
    "photos": "perceiver-image", "hip-tiny": "perceiver-image", "hip-digits": "perceiver-image",
    "hip-mae-images": "perceiver-image", "stereo-tiny": "perceiver-image", "perceiver-imagenet": "perceiver-image",
    "perceiver-imagenet-44m": "perceiver-image", "hip-16": "perceiver-image", "hip-256": "perceiver-image",
    "hip-mini": "perceiver-image", "hip-class-bottleneck-mini": "perceiver-image", "flow-sintel": "perceiver-image",
    "shapes": "perceiver-pointcloud", "shapes-perceiver": "perceiver-pointcloud",
    "audio-words": "perceiver-audio", "audio-words-waveform": "perceiver-audio", "audio-folder": "perceiver-audio",
    "video-ae-tiny": "perceiver-video", "multimodal-ae-tiny": "perceiver-video",
    "av-classify-tiny": "perceiver-video",
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


def source_checkout() -> Path | None:
    """The root of the source checkout this perceiver-core runs from (editable install), or None (a wheel)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "plugins").is_dir() and (root / "pyproject.toml").is_file() else None


def install_hint(distribution: str) -> str:
    """What really installs a first-party distribution: the checkout's plugin folder when running from a source
    checkout, else the distribution's wheel of this release (never a bare index name someone else could claim)."""
    root = source_checkout()
    if root is not None and (root / "plugins" / distribution / "pyproject.toml").is_file():
        return f"pip install {root / 'plugins' / distribution}"
    from ..version import __version__

    extra = distribution.removeprefix("perceiver-")
    if extra not in RELEASED_EXTRAS:
        return f"no release of perceiver includes {distribution} yet (perceiver-core {__version__})"
    return (f"install the {distribution} wheel of this release: pip install \"perceiver-core[{extra}]=={__version__}\" "
            f"--find-links DIR_OF_THE_RELEASE_WHEELS, or pip install ./plugins/{distribution} from a source checkout")


# First-party plugin distributions that perceiver-core's extras name (pyproject.toml [project.optional-dependencies]).
RELEASED_EXTRAS = ("image", "text", "tabular", "pointcloud", "audio", "video", "cpu", "cuda", "mps")


@dataclass
class RegistryFileRef:
    """A registry file shipped as package data of a plugin (`package`, `resource` relative to it)."""

    package: str
    resource: str
    presets: bool = False  # presets (the papers' configurations) rather than pipelines to train as they are
    distribution: str = "?"
    version: str = "?"

    def path(self):
        """A readable path (importlib.resources: works for wheels and editable installs alike)."""
        from importlib import resources

        return resources.files(self.package).joinpath(self.resource)


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
    registry_files: list[RegistryFileRef] = field(default_factory=list)
    # backends of the core that a plugin replaced: name -> the core's spec (e.g. perceiver-cpu refines "cpu")
    refined: dict[str, BackendSpec] = field(default_factory=dict)

    def add_registry_file(self, package: str, resource: str = "pipelines.toml", *, presets: bool = False) -> None:
        """Ship a registry file with the plugin (package data of `package`); read only when a registry loads.
        `presets=True`: its pipelines are presets (listed by `perceiver pipelines --presets`, built by
        `build_preset`)."""
        if not package or not isinstance(package, str) or not isinstance(resource, str):
            raise ValueError("add_registry_file(package, resource) takes a package name and a file name in it")
        self.registry_files.append(RegistryFileRef(package, resource, presets, self.current_distribution,
                                                   self.current_version))

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
        if existing is not None and existing.distribution == "perceiver-core" and \
                self.current_distribution != "perceiver-core":
            self.refined[name] = existing  # a plugin may refine a backend the core ships (the CPU)
        elif existing is not None:
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
            installed = any(n.startswith(prefix) for (k, n) in self.components)
            if name.startswith(prefix) and not installed:
                return _raise(MissingComponentError(
                    f"{kind} {name!r} is provided by the plugin {dist}, which is not installed: {install_hint(dist)}"))
        names = self.names(kind)
        listing = ", ".join(names) if names else "none"
        raise MissingComponentError(f"unknown {kind} {name!r}{suggest(name, names)}; registered: {listing}")

    def names(self, kind: str) -> list[str]:
        return sorted(n for (k, n) in self.components if k == kind)


def _raise(exc: Exception):
    raise exc
