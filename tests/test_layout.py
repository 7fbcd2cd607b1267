"""The package's shape: layers without import circles, a small top level, plugins on the public API only.

Read from the source with `ast` (nothing is imported), so a circle through a function-level import is caught
as well as one at module level: both break as soon as someone moves the import up.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import perceiver_core

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "perceiver_core"
PLUGINS = ROOT / "plugins"

# What a reader opens first, plus the public namespaces plugin authors import.
TOP_MODULES = {"__init__", "__main__", "interfaces", "hookspecs", "byte_array", "errors", "version", "datasets"}
TOP_PACKAGES = {"config", "testing", "model", "registry", "plugins", "data", "runtime", "commands"}
PUBLIC_NAMESPACES = {"perceiver_core", "perceiver_core.config", "perceiver_core.errors", "perceiver_core.testing",
                     "perceiver_core.datasets"}
# layer -> layers it must never import (registry and plugin machinery stay torch-free and model-free)
FORBIDDEN = {
    "registry": ("model", "runtime", "commands", "data"),
    "plugins": ("model", "runtime", "commands", "data", "registry"),
    "config": ("model", "runtime", "commands", "data", "registry", "plugins"),
    "model": ("runtime", "commands"),
    "data": ("model", "runtime", "commands"),
}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def import_graph() -> dict[str, set[str]]:
    """module -> the perceiver_core modules it imports (anywhere in the file, TYPE_CHECKING blocks aside)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("perceiver_core"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("perceiver_core")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    bad = sorted(f"{mod} -> {dep}" for mod, deps in import_graph().items()
                 if mod.startswith(f"perceiver_core.{layer}.") or mod == f"perceiver_core.{layer}"
                 for dep in deps
                 if any(dep == f"perceiver_core.{f}" or dep.startswith(f"perceiver_core.{f}.")
                        for f in FORBIDDEN[layer]))
    assert not bad, f"{layer}/ imports a layer above it: {bad}"


def test_top_level_holds_only_the_public_surface():
    modules = {p.stem for p in PKG.glob("*.py")}
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert modules == TOP_MODULES, f"unexpected top-level modules: {sorted(modules ^ TOP_MODULES)}"
    assert packages == TOP_PACKAGES, f"unexpected top-level packages: {sorted(packages ^ TOP_PACKAGES)}"


def test_every_subpackage_says_what_lives_there():
    for init in PKG.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 20, f"{init.relative_to(ROOT)} has no docstring saying what lives there"


def test_first_party_plugins_import_only_the_public_api():
    offenders = []
    for path in PLUGINS.glob("*/*/**/*.py"):
        if "tests" in path.relative_to(PLUGINS).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("perceiver_core") and name not in PUBLIC_NAMESPACES:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not offenders, "plugins reach into core internals:\n" + "\n".join(offenders)


def test_every_public_name_resolves():
    for name in perceiver_core.__all__:
        assert getattr(perceiver_core, name) is not None, name
    for namespace in PUBLIC_NAMESPACES:
        importlib.import_module(namespace)
