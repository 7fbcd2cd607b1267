"""`perceiver plugin new NAME`: scaffold a complete, working plugin distribution.

The generated folder `perceiver-NAME/` is a pip-installable distribution (setuptools) with the `perceiver.plugins`
entry point and the `perceiver.core_api` declaration, a package `perceiver_NAME`, pydantic config models that
import no torch, tests that run the core's conformance suites, a README and (modality) a pipelines file shipped as
package data. It installs with `pip install` and passes its own tests unchanged; the author then edits the
components.

Two kinds: `modality` (a preprocessor, a positional scheme and a small synthetic dataset, so a pipeline trains
end to end without a download) and `backend` (a hardware backend, running on the host CPU until adapted).

Templates are package data (`templates/<kind>/...tmpl`) with `__PLACEHOLDER__` markers; nothing is executed.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ...errors import UserError
from ...version import CORE_API_VERSION, __version__
from ..components import FIRST_PARTY_BACKENDS, FIRST_PARTY_NAMESPACES

KINDS = ("modality", "backend")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME = 40
RESERVED = {"core", "plugin", "plugins", "testing"}
FIRST_PARTY = {**{p.rstrip("."): d for p, d in FIRST_PARTY_NAMESPACES.items()}, **FIRST_PARTY_BACKENDS}


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from NAME: `wave-x` -> perceiver-wave-x, perceiver_wave_x, WaveX, components wave-x.*"""

    name: str
    distribution: str
    package: str
    class_prefix: str


def plugin_names(raw: str) -> PluginNames:
    """Validate NAME (a short lowercase name; a leading "perceiver-" is dropped) and derive the others."""
    name = raw.strip()
    if name.startswith("perceiver-"):
        name = name[len("perceiver-"):]
    if not NAME_RE.match(name) or len(name) > MAX_NAME:
        hint = name.lower().replace("_", "-").replace(" ", "-")
        suggestion = f" (e.g. {hint!r})" if NAME_RE.match(hint) and len(hint) <= MAX_NAME else ""
        raise UserError(f"invalid plugin name {raw!r}: use lowercase letters, digits and single hyphens, starting "
                        f"with a letter, at most {MAX_NAME} characters{suggestion}")
    if name in RESERVED:
        raise UserError(f"invalid plugin name {raw!r}: perceiver-{name} would clash with the core's own names; "
                        "choose another name")
    if name in FIRST_PARTY:
        raise UserError(f"invalid plugin name {raw!r}: it is the namespace of the first-party plugin "
                        f"{FIRST_PARTY[name]}; choose another name (e.g. {name + '-ext'!r})")
    package = "perceiver_" + name.replace("-", "_")
    if keyword.iskeyword(package) or not package.isidentifier():  # pragma: no cover - the regex excludes it
        raise UserError(f"invalid plugin name {raw!r}: {package!r} is not a valid Python package name")
    class_prefix = "".join(part.capitalize() for part in name.split("-"))
    return PluginNames(name, f"perceiver-{name}", package, class_prefix)


def _templates():
    return resources.files(__package__).joinpath("templates")


def _walk(folder, prefix: str = ""):
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        rel = f"{prefix}{item.name}"
        if item.is_dir():
            yield from _walk(item, rel + "/")
        elif item.name.endswith(".tmpl"):
            yield rel[: -len(".tmpl")], item.read_text(encoding="utf-8")


def render(kind: str, names: PluginNames) -> dict[str, str]:
    """Relative path -> file text of the distribution to generate."""
    if kind not in KINDS:
        raise UserError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
    description = (f"{names.class_prefix} modality for the Perceiver framework" if kind == "modality"
                   else f"{names.class_prefix} hardware backend for the Perceiver framework")
    major, minor = (int(x) for x in __version__.split(".")[:2])
    values = {
        "__NAME__": names.name, "__DIST__": names.distribution, "__PKG__": names.package,
        "__CLASS__": names.class_prefix, "__DESCRIPTION__": description, "__CORE_API__": CORE_API_VERSION,
        "__CORE_MINOR__": f"{major}.{minor}", "__CORE_NEXT__": f"{major}.{minor + 1}",
        "__EXTRA_DEPS__": ', "numpy>=1.24"' if kind == "modality" else "",
    }
    pattern = re.compile("|".join(re.escape(k) for k in values))
    root = _templates()
    files: dict[str, str] = {}
    for folder in ("common", kind):
        for rel, text in _walk(root.joinpath(folder)):
            if rel.startswith("package/"):
                rel = names.package + rel[len("package"):]
            files[rel] = pattern.sub(lambda m: values[m.group(0)], text)
    return files


def create_plugin(name: str, path: str | Path = ".", kind: str = "modality") -> tuple[Path, list[str]]:
    """Write the distribution into PATH/perceiver-NAME; refuses a target that exists and is not empty."""
    names = plugin_names(name)
    files = render(kind, names)
    target = Path(path) / names.distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not empty; remove it or choose another --path")
    for rel, text in files.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return target, sorted(files)


def cmd_plugin_new(args) -> int:
    """The `perceiver plugin new` handler."""
    import json

    target, files = create_plugin(args.name, args.path, args.kind)
    names = plugin_names(args.name)
    if getattr(args, "json", False):
        print(json.dumps({"path": str(target), "distribution": names.distribution, "package": names.package,
                          "kind": args.kind, "files": files}, indent=2), file=getattr(args, "stdout", None))
        return 0
    print(f"created {names.distribution} ({args.kind} plugin) in {target}:")
    for rel in files:
        print(f"  {rel}")
    print(f"next: cd {target} && pip install -e . && pytest && perceiver plugins check {names.distribution}")
    return 0
