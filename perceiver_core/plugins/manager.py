"""Discovering, checking and isolating plugins.

Each distribution that exposes an entry point in `perceiver.plugins` is loaded on its own: its declared core API
version (entry point group `perceiver.core_api`) is checked before its code is imported; an import error, a hook
with a wrong signature, an unknown (misspelled) hook or a name already registered is reported with the
distribution, its version and the cause, and the other plugins keep working. `PERCEIVER_STRICT_PLUGINS=1` turns
every such report into an exception; `PERCEIVER_DISABLE_PLUGIN_AUTOLOAD=1` loads only the built-in components.

Plugin code is called as hostile code (`guard.guarded`): its import and each hook run with stdout captured (a print
never reaches a `--json` document), timed (an import over 1 s is a warning), and checked for changes to torch's
global state (default dtype, global RNG), which are undone and reported. What counts as broken is one rule, shared
with `perceiver plugins check` and the conformance suites (`hook_marker_problems`): a hook function must carry
`@perceiver_core.hookimpl`; an undecorated function named like a hook is an error and is never called.

Nothing here imports torch: listing plugins must stay light.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .. import hookspecs
from ..errors import PluginError
from ..version import CORE_API_VERSION, __version__
from .components import ComponentRegistry, suggest
from .guard import guarded

ENTRY_POINT_GROUP = "perceiver.plugins"
API_GROUP = "perceiver.core_api"
STRICT_ENV = "PERCEIVER_STRICT_PLUGINS"
NO_AUTOLOAD_ENV = "PERCEIVER_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_PLUGINS = ("perceiver_core.plugins.builtin",)
HOOK_NAMES = ("perceiver_register_components", "perceiver_register_backends", "perceiver_register_pipelines")
IMPL_MARKER = hookspecs.PROJECT + "_impl"


def hook_marker_problems(plugin: Any, label: str) -> list[str]:
    """The one rule for hook functions: marked with @hookimpl => a known hook; a known hook => marked."""
    problems = []
    for attr in sorted(dir(plugin)):
        if not attr.startswith("perceiver_"):
            continue
        try:
            fn = getattr(plugin, attr, None)
        except Exception:  # noqa: BLE001 - a hostile __getattr__
            continue
        if not callable(fn):
            continue
        marked = hasattr(fn, IMPL_MARKER)
        if marked and attr not in HOOK_NAMES:
            problems.append(f"{label}.{attr} is marked @hookimpl but is not a known hook{suggest(attr, HOOK_NAMES)}; "
                            f"known hooks: {', '.join(HOOK_NAMES)}")
        elif attr in HOOK_NAMES and not marked:
            problems.append(f"{label}.{attr} is not decorated with @perceiver_core.hookimpl, so it is never called")
    return problems


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class PluginReport:
    """What happened to one plugin: `status` is "ok", "error" (loaded in part or not at all) or "refused"."""

    name: str
    distribution: str
    version: str
    status: str = "ok"
    errors: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # not broken: printed at import, slow import
    import_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "status": self.status, "errors": self.errors, "components": self.components,
                "backends": self.backends, "warnings": self.warnings,
                "import_seconds": None if self.import_seconds is None else round(self.import_seconds, 3)}


class PluginManager:
    """Loads the built-in plugin and every installed plugin into one `ComponentRegistry`."""

    def __init__(self, *, autoload: bool | None = None, strict: bool | None = None):
        self.strict = _env_flag(STRICT_ENV) if strict is None else strict
        self.autoload = (not _env_flag(NO_AUTOLOAD_ENV)) if autoload is None else autoload
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = ComponentRegistry()
        self.reports: list[PluginReport] = []
        for module_name in BUILTIN_PLUGINS:
            import importlib

            self.register(importlib.import_module(module_name), name="builtin",
                          distribution="perceiver-core", version=__version__)
        if self.autoload:
            self.load_entry_points()

    # -- loading -----------------------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        api_decls: dict[tuple[str, str], str] = {}
        for ep in metadata.entry_points(group=API_GROUP):
            api_decls[(_dist_name(ep), ep.name)] = ep.value.strip().removeprefix("v")
        seen: set[tuple[str, str]] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (_dist_name(e), e.name)):
            dist, version = _dist_name(ep), _dist_version(ep)
            if (dist, ep.name) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((dist, ep.name))
            report = PluginReport(ep.name, dist, version)
            declared = api_decls.get((dist, ep.name))
            if declared is None:
                self._fail(report, "refused",
                           f"declares no core API version; add to its pyproject.toml: "
                           f'[project.entry-points."{API_GROUP}"] {ep.name} = "v{CORE_API_VERSION}"')
                continue
            if declared != CORE_API_VERSION:
                self._fail(report, "refused",
                           f"was written for core API {declared}, but perceiver-core {__version__} offers API "
                           f"{CORE_API_VERSION}; install a release of {dist} built for API {CORE_API_VERSION}")
                continue
            failure: BaseException | None = None
            with guarded() as call:
                try:
                    module = ep.load()
                except BaseException as exc:  # noqa: BLE001 - a broken plugin must not take the others down
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    failure = exc  # SystemExit too: a plugin's sys.exit() must not end every command
            report.import_seconds = call.seconds
            report.warnings += call.warnings("importing it", slow=True)
            report.errors += call.problems("importing it")
            if failure is not None:
                self._fail(report, "error", f"failed to import {ep.value!r}: {_short(failure)}", failure)
                continue
            if call.torch_changes:
                report.status = "error"
                if self.strict:
                    raise PluginError(self._describe(report, report.errors[-1]))
            self.register(module, name=ep.name, distribution=dist, version=version, report=report)

    def register(self, plugin: Any, *, name: str, distribution: str = "?", version: str = "?",
                 report: PluginReport | None = None) -> PluginReport:
        """Register a plugin object (a module or any object with hook functions) and run its hooks."""
        report = report or PluginReport(name, distribution, version)
        label = getattr(plugin, "__name__", name)
        unknown = [attr for attr in dir(plugin)
                   if attr.startswith("perceiver_") and attr not in HOOK_NAMES
                   and callable(getattr(plugin, attr, None))
                   and hasattr(getattr(plugin, attr), IMPL_MARKER)]
        if unknown:
            self._fail(report, "error", "; ".join(
                f"defines unknown hook {u!r}{suggest(u, HOOK_NAMES)}; known hooks: {', '.join(HOOK_NAMES)}"
                for u in unknown))
            return report
        undecorated = [p for p in hook_marker_problems(plugin, label) if "is not decorated" in p]
        if undecorated:  # the same rule as `plugins check`: reported, and the function is not called
            self._fail(report, "error", "; ".join(undecorated))
            return report
        try:
            self.pm.register(plugin, name=f"{distribution}:{name}")
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._fail(report, "error", f"has an invalid hook: {_short(exc)}", exc)
            return report
        self._run_hooks(plugin, report)
        self.reports.append(report)
        return report

    def _run_hooks(self, plugin: Any, report: PluginReport) -> None:
        reg = self.registry
        reg.current_distribution, reg.current_version = report.distribution, report.version
        before_c, before_b = set(reg.components), dict(reg.backends)
        for hook in HOOK_NAMES:
            fn = getattr(plugin, hook, None)
            if fn is None or not hasattr(fn, IMPL_MARKER):
                continue
            n_errors = len(reg.errors)
            failure: BaseException | None = None
            with guarded() as call:
                try:
                    fn(registry=reg)
                except BaseException as exc:  # noqa: BLE001 - SystemExit included; only Ctrl-C goes through
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    failure = exc
            report.warnings += call.warnings(f"its hook {hook}")
            reg.errors += call.problems(f"its hook {hook}")
            if failure is not None:
                report.errors.append(f"{hook} raised {_short(failure)}")
                report.status = "error"
                if self.strict:
                    raise PluginError(self._describe(report, report.errors[-1])) from failure
            new_errors = reg.errors[n_errors:]
            if new_errors:
                report.errors.extend(new_errors)
                report.status = "error"
                if self.strict:
                    raise PluginError(self._describe(report, new_errors[0]))
        report.components = sorted(f"{k}:{n}" for (k, n) in set(reg.components) - before_c)
        report.backends = sorted(n for n, b in reg.backends.items() if before_b.get(n) is not b)

    def _fail(self, report: PluginReport, status: str, message: str, exc: BaseException | None = None) -> None:
        report.status = status
        report.errors.append(message)
        if exc is not None and _env_flag("PERCEIVER_DEBUG"):
            report.errors.append("".join(traceback.format_exception(exc)))
        self.reports.append(report)
        if self.strict:
            raise PluginError(self._describe(report, message)) from exc

    @staticmethod
    def _describe(report: PluginReport, message: str) -> str:
        return f"plugin {report.name!r} from {report.distribution} {report.version} {message}"

    # -- queries -----------------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        return [self._describe(r, e) for r in self.reports for e in r.errors]

    def warnings(self) -> list[str]:
        return [self._describe(r, w) for r in self.reports for w in r.warnings]

    def distributions(self) -> dict[str, str]:
        """Installed plugin distributions and their versions (the core included)."""
        return {r.distribution: r.version for r in self.reports}


def _dist_name(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _dist_version(ep: metadata.EntryPoint) -> str:
    return ep.dist.version if ep.dist is not None else "?"


def _short(exc: BaseException) -> str:
    """The exception as one line (reports and CLI errors are one line each)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


_DEFAULT: PluginManager | None = None


def get_plugin_manager(*, refresh: bool = False) -> PluginManager:
    """The process-wide plugin manager (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None or refresh:
        _DEFAULT = PluginManager()
    return _DEFAULT
