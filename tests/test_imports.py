"""Dependencies point one way: deployments → flows → tasks → storage / expectations (function-level imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks", "storage", "expectations", "deployments")
# What each layer must never import (a prefix of the imported module's dotted name).
FORBIDDEN = {
    "storage": ("tasks", "flows", "deployments", "prefect"),
    "expectations": ("tasks", "flows", "deployments", "prefect"),
    "tasks": ("flows", "deployments"),
    "flows": ("deployments",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))
            if ".venv" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth; `from a import b` names a.b if a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if sub in known else base, node.lineno))
    return out


def _graph() -> tuple[dict[str, Path], dict[str, dict[str, int]], dict[str, list[tuple[str, int]]]]:
    mods = _modules()
    known = set(mods)
    edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    raw: dict[str, list[tuple[str, int]]] = {}
    for m, p in mods.items():
        raw[m] = sorted(set(_imports(m, p, known)))
        for target, line in raw[m]:
            if target in known and target != m:
                edges[m].setdefault(target, line)
    return mods, edges, raw


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_imports():
    _, edges, _ = _graph()
    assert "flows.config" in edges["flows.cli"]  # cli imports config inside its command functions
    assert "storage.home" in edges["flows.cli"]


def test_no_import_cycles():
    mods, edges, _ = _graph()
    problems = []
    for comp in _cycles(edges):
        members = set(comp)
        lines = [f"{mods[a].relative_to(REPO)}:{line} imports {b}"
                 for a in comp for b, line in sorted(edges[a].items()) if b in members]
        problems.append(" <-> ".join(comp) + "\n    " + "\n    ".join(lines))
    assert not problems, "import cycles:\n  " + "\n  ".join(problems)


def test_layers_import_one_way():
    mods, _, raw = _graph()
    problems = []
    for m, imports in raw.items():
        banned = FORBIDDEN.get(m.split(".")[0], ())
        for target, line in imports:
            if any(target == b or target.startswith(b + ".") for b in banned):
                problems.append(f"{mods[m].relative_to(REPO)}:{line} imports {target}")
    assert not problems, "layer violations:\n  " + "\n  ".join(sorted(problems))
