"""`perceiver plugins check DIST`: static checks of one installed plugin distribution.

What a plugin author (or a CI job) wants to know before publishing, each reported as one precise line:

- the distribution is installed and exposes entry points in `perceiver.plugins`;
- each entry point declares the core API version (`perceiver.core_api`) and it matches this core;
- each entry point imports; its hook functions are known hooks (no typo), carry `@hookimpl`, have valid
  signatures, and pass pluggy's `check_pending()`;
- running its hooks registers no name already taken by the core or another installed plugin;
- each registered component's config model imports (without torch), is a pydantic model, forbids unknown keys
  and exports a JSON schema; each factory reference resolves to a callable; each backend builds and answers
  `available()` without raising.

Nothing here runs a model. The functions are also used by the conformance suites in `perceiver_core.testing`.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..version import CORE_API_VERSION, __version__
from .components import resolve_ref, suggest
from .guard import guarded
from .manager import API_GROUP, ENTRY_POINT_GROUP, IMPL_MARKER, PluginManager, hook_marker_problems  # noqa: F401


@dataclass
class CheckResult:
    """The outcome of checking one distribution: `problems` make the check fail, `warnings` do not."""

    distribution: str
    version: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    entry_points: list[dict[str, str]] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, "version": self.version, "ok": self.ok,
                "problems": self.problems, "warnings": self.warnings, "entry_points": self.entry_points,
                "components": self.components, "backends": self.backends}

    def as_text(self) -> str:
        head = f"{self.distribution} {self.version or '(not installed)'}"
        if self.ok:
            what = ", ".join(self.components + [f"backend:{b}" for b in self.backends]) or "nothing"
            lines = [f"{head}: ok: {what}"]
        else:
            lines = [f"{head}: {len(self.problems)} problem(s)"]
            lines += [f"  error: {p}" for p in self.problems]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# -- pieces shared with the conformance suites ----------------------------------------------------------------
def hook_problems(plugin: Any) -> list[str]:
    """Problems of a plugin object's hook functions, without running them: unknown (misspelled) hooks marked with
    `@hookimpl`, hook functions missing the marker, invalid signatures, `check_pending` failures."""
    import pluggy

    from .. import hookspecs

    label = getattr(plugin, "__name__", type(plugin).__name__)
    problems = hook_marker_problems(plugin, label)  # the runtime applies the same rule
    if problems:
        return problems
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=f"check:{label}")
        pm.check_pending()
    except (pluggy.PluginValidationError, ValueError) as exc:
        detail = " ".join(str(exc).split())  # pluggy's message spans lines; reports are one line each
        problems.append(f"{label}: invalid hook: {detail}; hooks take exactly the arguments named in "
                        "perceiver_core/hookspecs.py (registry)")
    return problems


def config_model_problems(config_ref: Any, label: str) -> tuple[list[str], list[str]]:
    """(problems, warnings) of one component config model: importable, a pydantic model, unknown keys
    forbidden, a JSON schema exported; fields without a description are a warning."""
    from pydantic import BaseModel

    try:
        model = resolve_ref(config_ref)
    except Exception as exc:  # noqa: BLE001 - report any import failure precisely
        return [f"{label}: config {config_ref!r} does not import: {type(exc).__name__}: {exc}"], []
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return [f"{label}: config {config_ref!r} is {model!r}, not a pydantic model class; "
                "subclass perceiver_core.config.ComponentConfig"], []
    problems, warnings = [], []
    extra = model.model_config.get("extra") or "ignore"  # pydantic's default ignores unknown keys
    if extra != "forbid":
        problems.append(f"{label}: config {model.__module__}.{model.__qualname__} allows unknown keys "
                        f"(model_config extra={extra!r}), so a typo in a registry file passes silently; subclass "
                        "perceiver_core.config.ComponentConfig or set model_config = ConfigDict(extra='forbid')")
    try:
        json.dumps(model.model_json_schema())
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{label}: config {model.__qualname__} cannot export a JSON schema "
                        f"(`perceiver schema` needs one): {type(exc).__name__}: {exc}")
    undocumented = [n for n, f in model.model_fields.items() if not f.description]
    if undocumented:
        warnings.append(f"{label}: config {model.__qualname__} fields without a description: "
                        f"{', '.join(undocumented)} (use Field(..., description=...); editors show it)")
    return problems, warnings


def modules_importing_torch(modules: list[str]) -> dict[str, bool]:
    """For each module, whether importing it alone (in a fresh interpreter) imports torch."""
    return {module: _imports_torch(module) for module in dict.fromkeys(modules)}


@functools.lru_cache(maxsize=None)
def _imports_torch(module: str) -> bool:
    # cached: a test session runs many suites against the same config modules, each probe costs an interpreter
    code = ("import importlib, json, sys\nm = sys.argv[1]\nimportlib.import_module(m)\n"
            "print(json.dumps('torch' in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, timeout=120)
    return proc.returncode == 0 and proc.stdout.strip().endswith("true")


@functools.lru_cache(maxsize=None)
def import_problems(module: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(problems, warnings) of importing `module` alone in a fresh interpreter, under the same guard the runtime
    uses: changes to torch's global state are problems; printing to stdout and a slow import are warnings."""
    code = ("import importlib, json, sys\nfrom perceiver_core.plugins.guard import guarded\n"
            "with guarded() as call:\n    importlib.import_module(sys.argv[1])\n"
            "print(json.dumps([call.problems('importing it'), call.warnings('importing it', slow=True)]))")
    proc = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return (f"importing {module} alone fails: {tail}",), ()
    problems, warnings = json.loads(proc.stdout.strip().splitlines()[-1])
    return tuple(problems), tuple(warnings)


def api_problems(dist: metadata.Distribution, names: list[str]) -> dict[str, str]:
    """Entry point name -> the problem with its core API declaration (absent when it is fine)."""
    declared = {ep.name: ep.value.strip() for ep in dist.entry_points if ep.group == API_GROUP}
    out = {}
    for name in names:
        value = declared.get(name)
        if value is None:
            out[name] = (f"entry point {name!r} declares no core API version; add to pyproject.toml: "
                         f'[project.entry-points."{API_GROUP}"] {name} = "v{CORE_API_VERSION}"')
        elif not value.removeprefix("v").isdigit():
            out[name] = (f"entry point {name!r} declares core API {value!r}, which is not of the form "
                         f'"v<number>"; write {name} = "v{CORE_API_VERSION}"')
        elif value.removeprefix("v") != CORE_API_VERSION:
            out[name] = (f"entry point {name!r} was written for core API {value}, but perceiver-core {__version__} "
                         f'offers API v{CORE_API_VERSION}; port the plugin and declare {name} = "v{CORE_API_VERSION}"')
    for name in sorted(set(declared) - set(names)):
        out[name] = (f"declares core API for {name!r} in {API_GROUP} but has no entry point {name!r} in "
                     f"{ENTRY_POINT_GROUP}; the two groups must use the same names")
    return out


# -- the check ---------------------------------------------------------------------------------------------------
def _find_distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _plugin_distributions() -> list[str]:
    return sorted({ep.dist.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.dist is not None})


def check_distribution(name: str, *, check_torch_imports: bool = True) -> CheckResult:
    """Check one installed distribution (by its pip name); never raises for a broken plugin."""
    dist = _find_distribution(name)
    result = CheckResult(name)
    if dist is None:
        known = _plugin_distributions()
        result.problems.append(f"distribution {name!r} is not installed{suggest(name, known)}; installed plugin "
                               f"distributions: {', '.join(known) or 'none'} (pip install it first)")
        return result
    result.distribution, result.version = dist.metadata["Name"] or name, dist.version
    if result.distribution == "perceiver-core":
        return _check_builtin(result, check_torch_imports)
    eps = sorted((ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP), key=lambda e: e.name)
    result.entry_points = [{"name": ep.name, "value": ep.value} for ep in eps]
    if not eps:
        result.problems.append(f"{result.distribution} has no entry point in the group {ENTRY_POINT_GROUP!r}, so "
                               f"the core never loads it; add to pyproject.toml: [project.entry-points."
                               f'"{ENTRY_POINT_GROUP}"] NAME = "your_package.plugin" (and reinstall)')
        return result
    api = api_problems(dist, [ep.name for ep in eps])
    result.problems.extend(api.values())

    # The registry every other installed plugin fills, so duplicate names across distributions show up.
    pm = PluginManager(autoload=False, strict=False)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is None or ep.dist.name == dist.name:
            continue
        module, failure, _ = _load(ep)
        if failure is not None:  # another plugin's breakage is not this distribution's problem
            continue
        with guarded():  # its prints and global-state changes are not this check's output
            pm.register(module, name=ep.name, distribution=ep.dist.name, version=ep.dist.version)
    for ep in eps:
        if ep.name in api:
            if "no entry point" not in api[ep.name]:
                result.warnings.append(f"entry point {ep.name!r} was not imported: its core API declaration is wrong")
            continue
        module, failure, call = _load(ep)
        result.warnings += [f"entry point {ep.name!r}: {w}" for w in call.warnings("importing it", slow=True)]
        result.problems += [f"entry point {ep.name!r}: {p}" for p in call.problems("importing it")]
        if failure is not None:
            result.problems.append(f"entry point {ep.name} = {ep.value!r} fails to import: "
                                   f"{type(failure).__name__}: {failure}")
            continue
        problems = hook_problems(module)
        if problems:
            result.problems.extend(problems)
            continue
        report = pm.register(module, name=ep.name, distribution=result.distribution, version=dist.version)
        result.problems.extend(f"entry point {ep.name!r}: {e}" for e in report.errors)
        result.warnings.extend(f"entry point {ep.name!r}: {w}" for w in report.warnings)
        result.components += report.components
        result.backends += report.backends

    _check_components(pm, result, check_torch_imports)
    return result


_LOADED: dict[str, tuple[Any, BaseException | None, Any]] = {}


def _load(ep: metadata.EntryPoint):
    """(module, exception, GuardedCall) of an entry point's first import in this process: a module imported
    while checking another distribution is judged by what that first import did, not by a cached re-import."""
    if ep.value not in _LOADED:
        module, failure = None, None
        with guarded() as call:
            try:
                module = ep.load()
            except BaseException as exc:  # noqa: BLE001 - SystemExit at import is a broken plugin too
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failure = exc
        _LOADED[ep.value] = (module, failure, call)
    return _LOADED[ep.value]


def _check_builtin(result: CheckResult, check_torch_imports: bool) -> CheckResult:
    """The core has no entry point: its built-in plugin is registered directly. Check it the same way."""
    import importlib

    from .manager import BUILTIN_PLUGINS

    pm = PluginManager(autoload=False, strict=False)
    for module_name in BUILTIN_PLUGINS:
        result.entry_points.append({"name": "builtin", "value": module_name})
        result.problems += hook_problems(importlib.import_module(module_name))
    for report in pm.reports:
        result.problems += report.errors
        result.components += report.components
        result.backends += report.backends
    _check_components(pm, result, check_torch_imports)
    return result


def _check_components(pm: PluginManager, result: CheckResult, check_torch_imports: bool) -> None:
    config_modules: dict[str, str] = {}
    for (kind, cname), spec in sorted(pm.registry.components.items()):
        if spec.distribution != result.distribution:
            continue
        label = f"{kind} {cname!r}"
        problems, warnings = config_model_problems(spec.config, label)
        result.problems += problems
        result.warnings += warnings
        if isinstance(spec.config, str):
            config_modules.setdefault(spec.config.partition(":")[0], label)
        try:
            factory = spec.factory_fn()
        except Exception as exc:  # noqa: BLE001
            result.problems.append(f"{label}: factory {spec.factory!r} does not resolve: {type(exc).__name__}: {exc}")
            continue
        if not callable(factory):
            result.problems.append(f"{label}: factory {spec.factory!r} is not callable; it must take (config, context)")
    for bname, spec in sorted(pm.registry.backends.items()):
        if spec.distribution != result.distribution:
            continue
        try:
            with guarded():
                backend = spec.create()
                ok = backend.available()
        except Exception as exc:  # noqa: BLE001
            result.problems.append(f"backend {bname!r}: building it and calling available() raised "
                                   f"{type(exc).__name__}: {exc}; available() must return (ok, reason), never raise")
            continue
        if not (isinstance(ok, tuple) and len(ok) == 2 and isinstance(ok[0], bool) and isinstance(ok[1], str)):
            result.problems.append(f"backend {bname!r}: available() returned {ok!r}; it must return (bool, str)")
    if check_torch_imports and config_modules:
        for module, heavy in modules_importing_torch(list(config_modules)).items():
            if heavy:
                result.problems.append(f"{config_modules[module]}: its config module {module!r} imports torch; "
                                       "config modules must import only pydantic so listing and validating stay "
                                       "light (move torch imports to the factory's module)")


def run_check(args) -> int:
    """The `perceiver plugins check DIST...` handler: a report per distribution; exit 2 when any has a problem."""
    results = [check_distribution(name) for name in args.distributions]
    ok = all(r.ok for r in results)
    if getattr(args, "json", False):
        print(json.dumps({"ok": ok, "results": [r.as_dict() for r in results]}, indent=2),
              file=getattr(args, "stdout", None))
    else:
        print("\n".join(r.as_text() for r in results))
    return 0 if ok else 2
