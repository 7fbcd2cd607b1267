"""`perceiver doctor`: one report of this installation for bug reports and for "why is it slow / broken here".

Versions (Python, perceiver-core, torch, the key libraries), every plugin with its status, problems, warnings and
import time, every backend with why it is or is not available, and the thread settings with a warning when the
threads would fight other busy processes for the cores (and the setting that fixes it). `--json` for machines.
Exit 0 when nothing is broken (warnings included), 2 when a plugin or backend is broken (so CI can gate on it).
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any

LIBRARIES = ("torch", "pydantic", "pluggy", "safetensors", "torchdata", "numpy", "pillow")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect() -> dict[str, Any]:
    from ..plugins.manager import get_plugin_manager
    from ..runtime.backends import list_backends
    from ..runtime.threads import check_threads
    from ..version import CORE_API_VERSION, __version__

    pm = get_plugin_manager()
    _deep_checks(pm)
    plugins = [r.as_dict() for r in pm.reports]
    backends = list_backends(pm)
    threads = check_threads()
    report = {
        "versions": {"python": platform.python_version(), "platform": platform.platform(),
                     "perceiver-core": __version__, "core_api": CORE_API_VERSION,
                     **{lib: _version(lib) for lib in LIBRARIES}},
        "plugins": plugins,
        "backends": backends,
        "threads": threads.as_dict(),
        "problems": pm.problems(),
        "warnings": pm.warnings() + ([threads.warning] if threads.warning else []),
    }
    import torch

    report["versions"]["torch_cuda"] = torch.version.cuda
    report["threads"]["interop_threads"] = torch.get_num_interop_threads()
    return report


def _deep_checks(pm) -> None:
    """What loading does not exercise, checked as `perceiver plugins check` checks it (the same functions): each
    component's config model and factory, each backend's availability check. A failure is an error of its
    plugin's report."""
    from ..plugins.check import config_model_problems
    from ..runtime.backends import probe_backend

    by_dist = {r.distribution: r for r in pm.reports}
    found: list[tuple[str, str]] = []
    for (kind, name), spec in sorted(pm.registry.components.items()):
        problems, _ = config_model_problems(spec.config, f"{kind} {name!r}")
        found += [(spec.distribution, p) for p in problems]
        try:
            factory = spec.factory_fn()
        except Exception as exc:  # noqa: BLE001 - the same verdict as `plugins check`
            found.append((spec.distribution, f"{kind} {name!r}: factory {spec.factory!r} does not resolve: "
                                              f"{type(exc).__name__}: {exc}"))
            continue
        if not callable(factory):
            found.append((spec.distribution, f"{kind} {name!r}: factory {spec.factory!r} is not callable"))
    for name, spec in sorted(pm.registry.backends.items()):
        _, _, reason, broken = probe_backend(spec)
        if broken:
            found.append((spec.distribution, f"backend {name!r}: {reason}"))
    for dist, problem in found:
        report = by_dist.get(dist)
        if report is not None and problem not in report.errors:
            report.errors.append(problem)
            report.status = "error"


def as_text(report: dict[str, Any]) -> str:
    v = report["versions"]
    lines = ["versions:"] + [f"  {k}: {val}" for k, val in v.items()]
    lines.append("plugins:")
    for p in report["plugins"]:
        took = f", import {p['import_seconds']:.2f} s" if p.get("import_seconds") is not None else ""
        lines.append(f"  {p['distribution']} {p['version']} [{p['name']}] {p['status']}{took}")
        lines += [f"    error: {e}" for e in p["errors"]] + [f"    warning: {w}" for w in p.get("warnings", [])]
    lines.append("backends:")
    lines += [f"  {b['name']}: {'available' if b['available'] else 'unavailable'} "
              f"({b['distribution']} {b['version']}): {b['reason']}" for b in report["backends"]] or ["  none installed"]
    t = report["threads"]
    lines.append(f"threads: torch {t['threads']} intra-op / {t.get('interop_threads')} inter-op on {t['cores']} "
                 f"core(s); load average {t['load_average']}; other runnable tasks {t['runnable_others']}; "
                 f"OMP_NUM_THREADS={t['omp_num_threads'] or '(unset)'}")
    if t["warning"]:
        lines.append(f"  warning: {t['warning']}")
    n_p, n_w = len(report["problems"]), len(report["warnings"])
    lines.append("ok: nothing broken" if not (n_p or n_w) else f"{n_p} problem(s), {n_w} warning(s)")
    return "\n".join(lines)


def cmd_doctor(args) -> int:
    report = collect()
    out = getattr(args, "stdout", None) or sys.stdout
    print(json.dumps(report, indent=2) if getattr(args, "json", False) else as_text(report), file=out)
    return 2 if report["problems"] or any(not b["available"] and "bug in" in b["reason"]
                                          for b in report["backends"]) else 0
