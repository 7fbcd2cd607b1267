"""Choosing a hardware backend: an installed, available one by name, or the best one for "auto".

Backends are plugin code: building one, `available()` and `setup()` may raise or return garbage. For "auto" such a
backend is skipped and reported (one note on stderr naming its distribution); asked for by name it is one
BackendError line.
"""

from __future__ import annotations

import sys

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
        _, ok, reason, _ = probe_backend(spec)
        row.update(available=ok, reason=reason)
        rows.append(row)
    return rows


def probe_backend(spec):
    """(backend or None, available, reason, broken): never raises for a broken plugin backend."""
    from ..plugins.guard import guarded

    try:
        with guarded():
            backend = spec.create()
            answer = backend.available()
    except Exception as exc:  # noqa: BLE001 - an availability check must never take the CLI down
        reason = (f"availability check failed: {' '.join(f'{type(exc).__name__}: {exc}'.split())[:300]} "
                  f"(a bug in {spec.distribution} {spec.version})")
        return None, False, reason, True
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool)):
        return None, False, f"available() returned {answer!r:.80}, not (bool, reason) (a bug in {spec.distribution})", \
            True
    return backend, answer[0], str(answer[1]), False


def _setup(backend, spec):
    try:
        backend.setup()
    except Exception as exc:  # noqa: BLE001
        raise BackendError(f"backend {spec.name!r} ({spec.distribution} {spec.version}) failed to set up: "
                           f"{' '.join(f'{type(exc).__name__}: {exc}'.split())[:300]}") from None
    return backend


def select_backend(name: str = "auto", plugin_manager=None) -> Backend:
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    specs = pm.registry.backends
    if name == "auto":
        if not specs:
            raise BackendError(f"no hardware backend is installed: {install_hint('perceiver-cpu')}")
        reasons = []
        for spec in sorted(specs.values(), key=lambda s: -s.priority):
            backend, ok, reason, broken = probe_backend(spec)
            if broken:  # skipped, but not silently: its author needs to know
                print(f"perceiver: note: backend {spec.name!r} skipped: {reason}", file=sys.stderr)
            if ok:
                return _setup(backend, spec)
            reasons.append(f"{spec.name}: {reason}")
        raise BackendError("no installed backend is available here (" + "; ".join(reasons) + ")")
    if name not in specs:
        if name in FIRST_PARTY_BACKENDS:
            raise BackendError(f"backend {name!r} is not installed: {install_hint(FIRST_PARTY_BACKENDS[name])}")
        raise BackendError(f"unknown backend {name!r}{suggest(name, specs)}; installed: {', '.join(specs) or 'none'}")
    backend, ok, reason, _ = probe_backend(specs[name])
    if not ok:
        raise BackendError(f"backend {name!r} is installed but not available here: {reason}")
    return _setup(backend, specs[name])
