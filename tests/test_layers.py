"""The package layers: a core that imports nothing above it, no import cycles (lazy imports included), and no
benchmark name in harness/ outside the registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGES = ("harness", "evaluators", "training")
# the front: the CLI and what drives runs; everything else in harness/ is the core
FRONT = {"harness.cli", "harness.suite", "harness.config", "harness.report_cli", "harness.report", "harness.view",
         "harness.view_cli"}
RANK = {"core": 0, "evaluators": 1, "training": 2, "front": 3}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _layer(module: str) -> str:
    if module in FRONT or any(module.startswith(f + ".") for f in FRONT):
        return "front"
    return "core" if module.split(".")[0] == "harness" else module.split(".")[0]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every project module `module` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_no_module_imports_a_higher_layer():
    bad = [f"{m} ({_layer(m)}) imports {d} ({_layer(d)})" for m, deps in _graph().items() for d in deps
           if RANK[_layer(d)] > RANK[_layer(m)]]
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    # a package's __init__ importing its own submodules is not a cycle between layers
    cycles = [c for c in cycles if len({m.split(".")[0] for m in c}) > 1 or not any("." not in m for m in c)]
    assert not cycles, cycles


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def benchmark_names_in_code(path: Path, names) -> list[str]:
    """Identifiers with a benchmark name as a word (`followbench_categories`) and string constants that are a
    benchmark name or a key under it (`"llmbar"`, `"llmbar.protocol"`); prose (docstrings, help text) is not code."""
    token = re.compile(r"(?:^|_)(" + "|".join(map(re.escape, names)) + r")(?:_|$)", re.IGNORECASE)
    key = re.compile(r"^(" + "|".join(map(re.escape, names)) + r")([._:/].*)?$")
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        ident = None
        if isinstance(node, ast.Name):
            ident = node.id
        elif isinstance(node, ast.Attribute):
            ident = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.arg)):
            ident = getattr(node, "name", None) or getattr(node, "arg", None)
        elif isinstance(node, ast.keyword):
            ident = node.arg
        if ident and token.search(ident):
            hits.append(f"{path.relative_to(REPO)}:{node.lineno}: identifier {ident}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                and key.match(node.value):
            hits.append(f"{path.relative_to(REPO)}:{node.lineno}: string {node.value!r}")
    return hits


def test_harness_names_no_benchmark():
    from evaluators import REGISTRY

    hits = [h for p in sorted((REPO / "harness").rglob("*.py")) for h in benchmark_names_in_code(p, REGISTRY)]
    assert not hits, "\n".join(hits)


def test_the_name_check_finds_names(tmp_path):
    sample = REPO / "harness" / "_layer_probe_tmp.py"
    try:
        sample.write_text('"""About ifeval."""\nx = cfg.followbench_categories\nif name == "llmbar":\n    pass\n')
        hits = benchmark_names_in_code(sample, ["ifeval", "followbench", "llmbar"])
    finally:
        sample.unlink()
    assert len(hits) == 2 and "followbench_categories" in hits[0] and "'llmbar'" in hits[1]
