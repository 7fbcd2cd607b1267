"""Choosing a hardware backend: an installed, available one by name, or the best one for "auto"."""

from __future__ import annotations

from ..errors import BackendError
from ..interfaces import Backend
from ..plugins.components import FIRST_PARTY_BACKENDS, install_hint, suggest


def list_backends(plugin_manager=None) -> list[dict]:
    """Every installed backend with its availability and the reason when it is not available."""
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    rows = []
    for spec in sorted(pm.registry.backends.values(), key=lambda s: -s.priority):
        row = spec.as_dict()
        try:
            ok, reason = spec.create().available()
        except Exception as exc:  # noqa: BLE001 - an availability check must never take the CLI down
            ok, reason = False, f"availability check failed: {type(exc).__name__}: {exc}"
        row.update(available=ok, reason=reason)
        rows.append(row)
    return rows


def select_backend(name: str = "auto", plugin_manager=None) -> Backend:
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    specs = pm.registry.backends
    if name == "auto":
        if not specs:
            raise BackendError(f"no hardware backend is installed: {install_hint('perceiver-cpu')}")
        reasons = []
        for spec in sorted(specs.values(), key=lambda s: -s.priority):
            backend = spec.create()
            ok, reason = backend.available()
            if ok:
                backend.setup()
                return backend
            reasons.append(f"{spec.name}: {reason}")
        raise BackendError("no installed backend is available here (" + "; ".join(reasons) + ")")
    if name not in specs:
        if name in FIRST_PARTY_BACKENDS:
            raise BackendError(f"backend {name!r} is not installed: {install_hint(FIRST_PARTY_BACKENDS[name])}")
        raise BackendError(f"unknown backend {name!r}{suggest(name, specs)}; installed: {', '.join(specs) or 'none'}")
    backend = specs[name].create()
    ok, reason = backend.available()
    if not ok:
        raise BackendError(f"backend {name!r} is installed but not available here: {reason}")
    backend.setup()
    return backend
