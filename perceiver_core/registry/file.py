"""Registry files: named pipelines as data, validated before anything runs.

    [requires]
    perceiver-image = ">=0.1"

    [pipelines.digits]
    task = { use = "classification", num_classes = 10 }
    ...

    [pipelines.digits-permuted]
    extends = "digits"
    preprocessor = { use = "image.pixels", permute_seed = 0 }

Every error is one `RegistryError` whose message starts with `file:line: key.path:` and says what was expected,
with a "did you mean" for unknown names and the pip command for a component of a plugin that is not installed.
A registry file can only name registered components: it holds no import paths and runs no code.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from ..config.train import InitFromConfig, TrainConfig
from ..errors import MissingComponentError, RegistryError, RegistryErrors
from ..plugins.components import FIRST_PARTY_PIPELINES, install_hint, suggest
from .locate import locate
from .values import MAX_DEPTH, decode_error_line, key_path, pydantic_message, short, too_deep
from .presets import PRESETS_FILE
from .inputs import check_inputs, error_model, input_choices
from .spec import INPUT_SECTIONS, OPTIONAL_SECTIONS, PIPELINE_KEYS, SECTIONS, ComponentChoice, InputOptions, \
    PackingConfig, PipelineSpec

DEFAULT_REGISTRY = "registry.toml"
REGISTRY_ENV = "PERCEIVER_REGISTRY"
# Bounds on a registry file, checked before (size) and right after (nesting) parsing it: a file is hostile input.
MAX_FILE_BYTES = 16 << 20  # 16 MiB: thousands of pipelines; read only after its size is known
MAX_EXTENDS = 64  # pipelines in one `extends` chain: bounds the work per pipeline, so validation stays linear


@dataclass
class _Source:
    path: str
    text: str
    distribution: str | None = None  # the plugin distribution that ships the file; None for the user's files
    # the file's [requires] table: distribution -> version specifier (applies to this file's pipelines only)
    requires: dict[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    name: str
    table: dict[str, Any]
    source: _Source

    def requires(self) -> dict[str, tuple[str, list[str]]]:
        """distribution -> (specifier, key path): the file's [requires] and the pipeline's own `requires`."""
        out = {dist: (spec, ["requires", dist]) for dist, spec in self.source.requires.items()}
        own = self.table.get("requires")
        if isinstance(own, dict):
            out.update({dist: (spec, ["pipelines", self.name, "requires", dist]) for dist, spec in own.items()})
        return out


@dataclass
class Registry:
    """Pipelines from one or more registry files (later files add pipelines or override same-named ones)."""

    pipelines: dict[str, _Entry] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    # The papers' configurations shipped with the core (perceiver_core/registry/presets/presets.toml): a pipeline may
    # `extends` one, or name one directly; they are not listed or validated as the files' own pipelines.
    presets: dict[str, _Entry] = field(default_factory=dict)
    # A name two plugin distributions both ship: neither wins. The bare name is an error naming both (`resolve`,
    # `extends`); each stays reachable as DISTRIBUTION:NAME (added to `pipelines`/`presets`), and a pipeline of the
    # user's own files of that name settles it (it overrides both, as any user pipeline overrides a plugin's).
    conflicts: dict[str, list[_Entry]] = field(default_factory=dict)
    preset_conflicts: dict[str, list[_Entry]] = field(default_factory=dict)
    # name -> the entries of other files that a user's file replaced (shown by `pipelines` and `validate`)
    overridden: dict[str, list[_Entry]] = field(default_factory=dict)

    # -- public --------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self.pipelines)

    def describe(self, *, presets: bool = False) -> list[dict[str, str]]:
        names = self.names() + (sorted(set(self.presets) - set(self.pipelines)) if presets else [])
        rows = []
        for n in names:
            source = self._entry(n).source
            ambiguous = self._ambiguous(n)
            if ambiguous:  # no description of its own: which one is meant is for the user to say
                rows.append({"name": n, "description": "ambiguous: " + _conflict_choices(n, ambiguous),
                             "file": None, "distribution": None, "source": "ambiguous: " + ", ".join(
                                 e.source.distribution for e in ambiguous), "preset": n not in self.pipelines,
                             "overrides": []})
                continue
            try:
                description = str(self._merged(n)[0].get("description", ""))
            except RegistryError as exc:  # (an extends of an ambiguous name: validate says where)
                description = f"invalid: {exc.reason}"
            rows.append({"name": n, "description": description, "file": source.path,
                         "distribution": source.distribution, "source": source.distribution or source.path,
                         "preset": n not in self.pipelines,
                         "overrides": [_describe_source(e.source) for e in self.overridden.get(n, [])]
                         if n in self.pipelines else []})
        return rows

    def override_notes(self, names: Iterable[str]) -> list[str]:
        """One line per pipeline of `names` that a user's file defines over another file's (on purpose, often:
        but it should be visible)."""
        notes = []
        for n in names:
            if n in self.pipelines and self.overridden.get(n):
                replaced = "; ".join(f"{_describe_source(e.source)} ({e.source.path})" for e in self.overridden[n])
                notes.append(f"pipeline {n!r} of {self.pipelines[n].source.path} overrides the one of {replaced}")
        return notes

    def _ambiguous(self, name: str) -> list[_Entry] | None:
        """The plugins' entries a bare `name` would choose between (None: the name is not ambiguous)."""
        return self.conflicts.get(name) if name in self.pipelines else self.preset_conflicts.get(name)

    def _entry(self, name: str) -> _Entry:
        return self.pipelines[name] if name in self.pipelines else self.presets[name]

    def resolve(self, name: str, overrides: Iterable[str] = (), plugin_manager=None) -> PipelineSpec:
        """Merge `extends`, apply `--set key.path=value` overrides, validate every section."""
        from ..plugins.manager import get_plugin_manager

        pm = plugin_manager or get_plugin_manager()
        if name not in self.pipelines and name not in self.presets:
            owner = FIRST_PARTY_PIPELINES.get(name)
            if owner is not None:
                raise RegistryError(f"the pipeline {name!r} ships with the plugin {owner}, which is not installed: "
                                    f"{install_hint(owner)}")
            files = ", ".join(self.files) or "no registry file"
            raise RegistryError(f"no pipeline named {name!r}{suggest(name, [*self.pipelines, *self.presets])} in "
                                f"{files}; pipelines: {', '.join(self.names()) or 'none'}; presets: "
                                f"{', '.join(sorted(self.presets)) or 'none'}")
        ambiguous = self._ambiguous(name)
        if ambiguous:
            raise RegistryError(f"the pipeline {name!r} is shipped by two plugins, "
                                f"{' and '.join(f'{e.source.distribution} ({e.source.path})' for e in ambiguous)}, "
                                f"and neither wins: {_conflict_choices(name, ambiguous)}")
        table, chain = self._merged(name)
        table = copy.deepcopy(table)
        applied = [(_apply_override(table, override), override) for override in overrides]
        requires = self._check_requires(chain)
        return _validate(name, table, chain, requires, pm, applied)

    def error_at(self, name: str, subpath: list[str], message: str, overrides: Iterable[str] = (),
                 fields: Iterable[str] = ()) -> RegistryError:
        """An error about the value at `subpath` of pipeline `name` (e.g. one its build rejected), located: the
        `--set` that wrote it, else file:line of the pipeline in the extends chain whose own table defines it.
        An error about a whole table (`subpath` of one section) is narrowed to the key among `fields` (that table's
        config fields) that its message names, preferring the one written last (by a `--set`, else the pipeline
        nearest in the extends chain)."""
        _, chain = self._merged(name)
        applied = [(_override_path(o), o) for o in overrides if "=" in o]
        subpath = _pinpoint(chain, applied, subpath, message, fields)
        return _locate_error(chain, applied, subpath, message)

    def validate_all(self, plugin_manager=None, names: Iterable[str] | None = None) -> list[str]:
        """Errors of every pipeline (or of `names`), one message each (an empty list means the files are valid)."""
        errors: dict[str, None] = {}  # ordered and deduplicated in O(1) per error
        for name in self.names() if names is None else names:
            try:
                self.resolve(name, plugin_manager=plugin_manager)
            except RegistryError as exc:
                for one in getattr(exc, "errors", [exc]):  # every error of the pipeline, not only the first
                    errors.setdefault(str(one), None)
        return list(errors)

    # -- internals -----------------------------------------------------------------------------------------
    def _merged(self, name: str) -> tuple[dict[str, Any], list[_Entry]]:
        chain: list[_Entry] = []
        entry = self._entry(name)
        while True:
            if any(e is entry for e in chain):  # (by identity: DIST:NAME's entry has the bare name)
                cycle = " -> ".join([e.name for e in chain] + [entry.name])
                raise _error(entry, ["extends"], f"extends forms a cycle: {cycle}")
            chain.append(entry)
            if len(chain) > MAX_EXTENDS:
                raise _error(chain[0], ["extends"], f"the extends chain is longer than {MAX_EXTENDS} pipelines "
                             f"({' -> '.join(e.name for e in chain[:4])} -> ...); shorten it")
            parent = entry.table.get("extends")
            if parent is None:
                break
            if not isinstance(parent, str):
                raise _error(entry, ["extends"],
                             f"must be the name of another pipeline (a string), got {short(parent)}")
            if parent not in self.pipelines and parent not in self.presets:
                raise _error(entry, ["extends"], f"extends unknown pipeline {short(parent)}"
                             f"{suggest(parent, [*self.pipelines, *self.presets])}; pipelines: "
                             f"{', '.join(self.names())}; presets: {', '.join(sorted(self.presets))}")
            ambiguous = self._ambiguous(parent)
            if ambiguous:  # a plugin's pipeline extending its own of a name another plugin ships too: its own
                own = [e for e in ambiguous if e.source.distribution == entry.source.distribution]
                if not own:
                    raise _error(entry, ["extends"], f"extends {short(parent)}, which two plugins ship ("
                                 f"{', '.join(e.source.distribution for e in ambiguous)}): "
                                 f"{_conflict_choices(parent, ambiguous, extends=True)}")
                entry = own[-1]
                continue
            entry = self._entry(parent)
        merged: dict[str, Any] = {}
        for e in reversed(chain):
            merged = _merge(merged, e.table)
        merged.pop("extends", None)
        return merged, chain

    def _check_requires(self, chain: list[_Entry]) -> dict[str, str]:
        """Check the requirements of the pipelines in an extends chain (their files' [requires] and their own);
        returns them as distribution -> specifier."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        found: dict[str, str] = {}
        for entry in chain:
            own = entry.table.get("requires", {})
            if not isinstance(own, dict):
                raise _error(entry, ["requires"], "must be a table of distribution = \"version specifier\"")
            for dist, (spec, keys) in entry.requires().items():
                source = entry.source
                where = dict(file=source.path, line=locate(source.text, keys), key=key_path(keys))
                if not isinstance(spec, str):
                    raise RegistryError(f"must be a version specifier string such as \">=0.1\", got {short(spec)}",
                                        **where)
                try:
                    installed = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    raise RegistryError(f"the plugin {dist} is required but not installed: {install_hint(dist)}",
                                        **where) from None
                try:
                    ok = SpecifierSet(spec).contains(installed, prereleases=True)
                except InvalidSpecifier:
                    raise RegistryError(f"{short(spec)} is not a version specifier (e.g. \">=0.1\")",
                                        **where) from None
                if not ok:
                    raise RegistryError(f"{dist} {installed} is installed but {short(spec)} is required: "
                                        f"{install_hint(dist)}", **where)
                found.setdefault(dist, spec)
        return found


def resolve_table(name: str, table: dict[str, Any], origin: str, plugin_manager=None,
                  overrides: Iterable[str] = ()) -> PipelineSpec:
    """Validate one pipeline given as a table rather than a file (a checkpoint's spec, a run's pipeline.json, an
    imported config); errors name `origin` in place of a file. `name` and `requires` keys of a resolved spec are
    accepted (and `requires` is not checked again: the plugins that built it are what matters now)."""
    table = {k: v for k, v in table.items() if k not in ("name", "requires")}
    registry = Registry()
    registry.pipelines[name] = _Entry(name, table, _Source(origin, json.dumps(table)))
    return registry.resolve(name, overrides, plugin_manager=plugin_manager)


def load_registry(paths: Iterable[str | os.PathLike] | None = None, *, include_default: bool = True,
                  include_plugins: bool = True, plugin_manager=None) -> Registry:
    """Read registry files, later ones adding pipelines or overriding same-named ones: the core's presets, the
    files installed plugins ship (`perceiver_register_pipelines`), `./registry.toml` (or $PERCEIVER_REGISTRY)
    unless `include_default` is False, then `paths` in order."""
    files: list[Path] = []
    if include_default:
        default = Path(os.environ.get(REGISTRY_ENV, DEFAULT_REGISTRY))
        if default.is_file():
            files.append(default)
    for p in paths or ():
        p = Path(p)
        if not p.is_file():
            raise RegistryError(f"registry file {str(p)!r} does not exist")
        if p not in files:
            files.append(p)
    registry = Registry()
    _read_file(registry, PRESETS_FILE, into=registry.presets, distribution="perceiver-core")
    if include_plugins:
        from ..plugins.manager import get_plugin_manager

        pm = plugin_manager or get_plugin_manager()
        for ref in pm.registry.registry_files:
            try:
                path = ref.path()
            except (ModuleNotFoundError, TypeError) as exc:
                raise RegistryError(f"the plugin {ref.distribution} ships a registry file {ref.package}:"
                                    f"{ref.resource} that cannot be found ({exc}); "
                                    f"reinstall {ref.distribution}") from None
            if any(Path(str(path)) == f for f in files):
                continue  # named again on the command line: read once, as the user's file
            _read_file(registry, path, into=registry.presets if ref.presets else None, distribution=ref.distribution)
    for path in files:
        _read_file(registry, path)
    return registry


def preset_names(plugin_manager=None) -> list[str]:
    """The names of the presets shipped with the core and the installed plugins."""
    return sorted(load_registry(include_default=False, plugin_manager=plugin_manager).presets)


def _read_file(registry: Registry, path, into: dict[str, _Entry] | None = None,
               distribution: str | None = None) -> None:
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = decode_error_line(str(exc))
        raise RegistryError(f"not valid TOML: {exc}", file=str(path), line=line) from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise RegistryError(f"not a registry file: arrays or inline tables nested too deeply (more than "
                            f"{MAX_DEPTH} levels)", file=str(path)) from None
    deep = too_deep(data)
    if deep is not None:
        raise RegistryError(f"nested too deeply: more than {MAX_DEPTH} levels of tables and arrays",
                            file=str(path), line=locate(text, deep), key=key_path(deep))
    source = _Source(str(path), text, distribution)
    if into is None and distribution is None:
        registry.files.append(str(path))
    for key in data:
        if key not in ("requires", "pipelines"):
            raise RegistryError(f"unknown top-level table{suggest(key, ['requires', 'pipelines'])}; "
                                "a registry file has [requires] and [pipelines.NAME] tables",
                                file=str(path), line=locate(text, [key]), key=key_path([key]))
    requires = data.get("requires", {})
    if not isinstance(requires, dict):
        raise RegistryError("must be a table of distribution = \"version specifier\"", file=str(path),
                            line=locate(text, ["requires"]), key="requires")
    for dist, spec in requires.items():
        if not isinstance(spec, str):
            raise RegistryError(f"must be a version specifier string such as \">=0.1\", got {short(spec)}",
                                file=str(path), line=locate(text, ["requires", dist]),
                                key=key_path(["requires", dist]))
        source.requires[dist] = spec
    pipelines = data.get("pipelines", {})
    if not isinstance(pipelines, dict):
        shown = "an array of tables ([[pipelines]])" if isinstance(pipelines, list) else \
            f"a {type(pipelines).__name__}"
        raise RegistryError(f"must be a table of named pipelines ([pipelines.NAME] sections), not {shown}",
                            file=str(path), line=locate(text, ["pipelines"]), key="pipelines")
    for name, table in pipelines.items():
        if not isinstance(table, dict):
            raise RegistryError("a pipeline must be a table ([pipelines.NAME])", file=str(path),
                                line=locate(text, ["pipelines", name]), key=key_path(["pipelines", name]))
        _add(registry, into, _Entry(name, table, source))


def _add(registry: Registry, into: dict[str, _Entry] | None, entry: _Entry) -> None:
    """Add a pipeline (or preset) of a file: a later file's replaces an earlier one's, except between two plugin
    distributions, where neither wins (`Registry.conflicts`) and each is kept as DISTRIBUTION:NAME."""
    target = registry.pipelines if into is None else into
    conflicts = registry.conflicts if into is None else registry.preset_conflicts
    name, source = entry.name, entry.source
    previous = target.get(name)
    if previous is not None and previous.source.path != source.path:
        if source.distribution is not None and previous.source.distribution is not None and \
                source.distribution != previous.source.distribution:
            chosen = conflicts.setdefault(name, [previous])
            chosen.append(entry)
            for e in chosen:
                target.setdefault(f"{e.source.distribution}:{name}", e)
        elif source.distribution is None and into is None:  # a user's file: its pipeline wins, visibly
            registry.overridden[name] = [*conflicts.pop(name, [previous])]
    target[name] = entry


def _describe_source(source: _Source) -> str:
    return source.distribution or source.path


def _conflict_choices(name: str, entries: list[_Entry], extends: bool = False) -> str:
    """How to choose between the plugins that ship `name`."""
    qualified = [f"{e.source.distribution}:{name}" for e in entries]
    if extends:
        return f"name the one you mean, e.g. extends = \"{qualified[0]}\""
    return (f"name the one you mean, {' or '.join(qualified)} (e.g. perceiver train {qualified[0]}), or define "
            f"[pipelines.{name}] in your own registry file (e.g. extends = \"{qualified[0]}\") to settle it")


def _read_text(path) -> str:
    """The file's text, its size checked before it is read (a registry file is small; anything else is refused)."""
    try:
        size = path.stat().st_size if hasattr(path, "stat") else None
        if size is not None and size > MAX_FILE_BYTES:
            raise RegistryError(f"not a registry file: {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}",
                                file=str(path))
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise RegistryError(f"not a registry file: more than the limit of {MAX_FILE_BYTES:,} bytes",
                                file=str(path))
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read the registry file: {exc}", file=str(path)) from None


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child keys override; a component table with the same `use` is merged key by key, another `use` replaces."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and old.get("use") == value.get("use", old.get("use")):
            out[key] = _merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _override_path(override: str) -> list[str]:
    return [p for p in override.split("=", 1)[0].strip().split(".") if p]


def _apply_override(table: dict[str, Any], override: str) -> list[str]:
    """`key.path=value`; the value is read as TOML (numbers, booleans, arrays, quoted strings) or a bare string.
    Returns the key path it set."""
    if "=" not in override:
        raise RegistryError(f"--set {override!r}: expected key.path=value, e.g. train.epochs=5")
    key, raw = (s.strip() for s in override.split("=", 1))
    path = _override_path(override)
    if not path:
        raise RegistryError(f"--set {override!r}: empty key path")
    if len(raw) > MAX_FILE_BYTES:
        raise RegistryError(f"--set {override[:40]!r}...: the value is longer than {MAX_FILE_BYTES:,} characters")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise RegistryError(f"--set {override[:60]!r}: arrays or tables nested too deeply") from None
    if len(path) > MAX_DEPTH or too_deep(value, MAX_DEPTH - len(path)) is not None:
        raise RegistryError(f"--set {override[:60]!r}: nested too deeply (more than {MAX_DEPTH} levels)")
    node = table
    for part in path[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise RegistryError(f"--set {override!r}: {part!r} is not a table")
        node = nxt
    node[path[-1]] = value
    return path


def _error(entry: _Entry, subpath: list[str], message: str) -> RegistryError:
    full = ["pipelines", entry.name, *subpath]
    return RegistryError(message, file=entry.source.path, line=locate(entry.source.text, full), key=key_path(full))


_QUALIFIED = re.compile(rf"\b({'|'.join([*SECTIONS, 'train', 'init_from'])})\.([A-Za-z_][A-Za-z0-9_]*)\b")


def _pinpoint(chain: list[_Entry], applied: list[tuple[list[str], str]], subpath: list[str], message: str,
              fields: Iterable[str]) -> list[str]:
    """Narrow an error about a table (`[section]`) to the key its message names: `section.key` anywhere in the
    message, else a bare field name of the section's config. Among several, the one written last wins (a --set,
    then the pipeline nearest in the extends chain); a key left at its default still names the key."""
    qualified = [[m.group(1), m.group(2)] for m in _QUALIFIED.finditer(message)]
    if qualified and (len(subpath) != 1 or any(q[0] == subpath[0] for q in qualified)):
        candidates = [q for q in qualified if len(subpath) != 1 or q[0] == subpath[0]]
    elif len(subpath) == 1:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message))
        candidates = [[subpath[0], f] for f in fields if f != "use" and f in words]
        candidates.sort(key=lambda c: message.find(c[1]))  # in the order the message names them
    else:
        return subpath
    if not candidates:
        return subpath

    def rank(path: list[str]) -> int:
        if any(p[:len(path)] == path or path[:len(p)] == p for p, _ in applied):
            return -1
        for i, entry in enumerate(chain):
            node = entry.table
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                return i
        return len(chain)  # a default: no pipeline wrote it

    return min(candidates, key=rank)


def _locate_error(chain: list[_Entry], applied: list[tuple[list[str], str]], subpath: list[str],
                  message: str) -> RegistryError:
    """The error at `subpath`: named by the `--set` that wrote the value (or a table above it, or a key below a
    table-level error), else by file:line of the pipeline whose own table defines it."""
    for path, override in reversed(applied):  # the last --set of a key wins, as it did when applied
        n = min(len(path), len(subpath))
        if n and path[:n] == subpath[:n]:
            key = key_path(["pipelines", chain[0].name, *subpath])
            return RegistryError(message, file=f"--set {override}", key=key)
    return _error(_where(chain, subpath), subpath, message)


def _where(chain: list[_Entry], subpath: list[str]) -> _Entry:
    """The pipeline in the extends chain (child first) whose own table defines the longest prefix of subpath."""
    best, best_len = chain[0], -1
    for entry in chain:
        node, n = entry.table, 0
        for part in subpath:
            if isinstance(node, dict) and part in node:
                node, n = node[part], n + 1
            else:
                break
        if n > best_len:
            best, best_len = entry, n
    return best


def _validate(name: str, table: dict[str, Any], chain: list[_Entry], requires: dict[str, str], pm,
              applied: list[tuple[list[str], str]] = ()) -> PipelineSpec:
    """Check a merged pipeline table against the installed components: every error at once (RegistryErrors)."""
    from .models import backend_names, pipeline_model

    errors: list[RegistryError] = []

    def fail(subpath: list[str], message: str) -> None:
        errors.append(_locate_error(chain, list(applied), subpath, message))

    checked: dict[str, Any] = {}
    for key in table:
        if key not in PIPELINE_KEYS:
            fail([key], f"unknown key{suggest(key, PIPELINE_KEYS)}; a pipeline has {', '.join(PIPELINE_KEYS)}")
        elif key not in SECTIONS:
            checked[key] = table[key]
    specs = {}
    checked_inputs, input_specs = check_inputs(table, pm, fail)  # several inputs: inputs.<name> tables
    if checked_inputs is not None:
        checked["inputs"] = checked_inputs
    for section, kind in SECTIONS.items():  # the `use` names first: their errors carry install hints
        if section in INPUT_SECTIONS and "inputs" in table:
            continue  # in each input's table instead
        raw = table.get(section, OPTIONAL_SECTIONS.get(section))
        if raw is None:
            fail([section], f"missing: every pipeline needs {section} = {{ use = \"<{kind} name>\", ... }}; "
                            f"registered {kind}s: {', '.join(pm.registry.names(kind)) or 'none'}")
            continue
        if isinstance(raw, str):  # shorthand: encoder = "perceiver"
            raw = {"use": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("use"), str):
            fail([section], f"expected a table with a `use` key naming a {kind}, e.g. "
                            f"{section} = {{ use = \"{(pm.registry.names(kind) or ['name'])[0]}\" }}")
            continue
        try:
            specs[section] = pm.registry.get(kind, raw["use"])
        except MissingComponentError as exc:
            fail([section, "use"], str(exc))
            continue
        checked[section] = raw
    backend = table.get("backend", "auto")
    if not isinstance(backend, str):
        fail(["backend"], "must be a backend name such as \"auto\" or \"cpu\"")
        checked.pop("backend", None)
    elif backend not in backend_names(pm):
        known = backend_names(pm)
        fail(["backend"], f"unknown backend {short(backend)}{suggest(backend, known)}; known: {', '.join(known)}")
        checked.pop("backend", None)
    validated = None
    try:
        validated = pipeline_model(pm).model_validate(checked)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            section = loc[0] if loc else ""
            in_input = error_model(loc, checked_inputs, input_specs)
            if in_input is not None:
                loc, model = in_input
                fail(loc, pydantic_message(err, loc[3:] if model is not InputOptions else loc[2:], model))
                continue
            if section in specs:
                if len(loc) > 1 and loc[1] == checked[section]["use"]:
                    loc = [section, *loc[2:]]  # drop the union's tag from the key path
                model = specs[section].config_model()
            else:
                model = {"train": TrainConfig, "init_from": InitFromConfig, "packing": PackingConfig}.get(section)
            if model is not None:
                message = pydantic_message(err, loc[1:], model)
                if len(loc) == 1:  # a model validator: about the table; point at the key it names
                    loc = _pinpoint(chain, list(applied), loc, message, model.model_fields)
                fail(loc, message)
            else:
                given = err.get("input")
                fail(loc, f"{err['msg']}" + (f"; got {short(given)}" if not isinstance(given, dict) else ""))
    if errors:
        raise errors[0] if len(errors) == 1 else RegistryErrors(errors)
    components = {section: ComponentChoice(checked[section]["use"], spec.config_model().model_validate(
        getattr(validated, section).model_dump(exclude={"use"}))) for section, spec in specs.items()}
    train = validated.train or TrainConfig()
    multi = input_choices(validated.inputs, input_specs) if checked_inputs is not None else None
    return PipelineSpec(name, validated.description, components, train, validated.backend, requires,
                        source=chain[0].source.path, init_from=validated.init_from, multi_inputs=multi,
                        packing=validated.packing or PackingConfig())
