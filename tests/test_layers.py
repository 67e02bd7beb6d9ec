"""The house's layers, as the tree shows them: `harness/core` (the engine) < `evaluators/` < `training/` <
`harness/suite` (evaluation runs) and `harness/reports` (tables, comparisons, figures, the HTML view) <
`harness/commands` (one module per `spar` subcommand). A module imports only from its own layer or below, lazy
imports (inside functions, `importlib.import_module("...")`) included; no import cycles; no benchmark name in
harness/ outside the registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import REPO

PACKAGES = ("harness", "evaluators", "training")
#: each layer's packages; suite and reports share a rank but import nothing of each other
LAYERS = {"core": ("harness.core", "harness"), "evaluators": ("evaluators",), "training": ("training",),
          "suite": ("harness.suite",), "reports": ("harness.reports",), "commands": ("harness.commands",)}
RANK = {"core": 0, "evaluators": 1, "training": 2, "suite": 3, "reports": 3, "commands": 4}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _layer(module: str) -> str:
    for layer, roots in sorted(LAYERS.items(), key=lambda kv: -max(len(r) for r in kv[1])):
        if any(module == r or module.startswith(r + ".") for r in roots if r != "harness") or module in roots:
            return layer
    raise AssertionError(f"{module}: in no layer; harness modules live in harness/core, harness/suite, "
                         "harness/reports or harness/commands")


#: a registry entry naming what to import later: "evaluators.llmbar:LLMBarEvaluator"
ENTRY_POINT = re.compile(r"^((?:harness|evaluators|training)(?:\.\w+)*):\w+$")


def _module_names(node: ast.AST, entry_points: bool = True) -> list[str]:
    """The names one AST node gives as modules to import: import statements, string literals given to
    `importlib.import_module` / `__import__`, and "module:attr" registry strings."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__"):
            return [node.args[0].value]
    if entry_points and isinstance(node, ast.Constant) and isinstance(node.value, str) \
            and ENTRY_POINT.match(node.value):
        return [ENTRY_POINT.match(node.value).group(1)]
    return []


def _imported_names(node: ast.AST, entry_points: bool = True) -> list[str]:
    """The module names one AST node imports, with `from m import x` also as `m.x` (x may be a submodule)."""
    names = _module_names(node, entry_points)
    if isinstance(node, ast.ImportFrom) and names:
        names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _imports(module: str, path: Path, known: set[str], entry_points: bool = True) -> set[str]:
    """Every project module `module` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        for name in _imported_names(node, entry_points):
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph(entry_points: bool = True) -> dict[str, set[str]]:
    """Module -> the project modules it imports. A registry's "module:attr" strings count for the layers but not
    for cycles: a registry naming the modules that import its types (training.methods) is the registry's design."""
    mods = _modules()
    return {m: _imports(m, p, set(mods), entry_points) for m, p in mods.items()}


def _violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} ({_layer(m)}) imports {d} ({_layer(d)})" for m, deps in graph.items() for d in deps
                  if RANK[_layer(d)] > RANK[_layer(m)] or (RANK[_layer(d)] == RANK[_layer(m)]
                                                           and _layer(d) != _layer(m)))


def test_no_module_imports_a_higher_layer():
    bad = _violations(_graph())
    assert not bad, "\n".join(bad)


def test_every_project_import_names_a_module_and_none_is_relative():
    """A stale path (`from harness.view import ...` after a move) or a relative import would slip past the layer
    check, which reads absolute module names."""
    mods = _modules()
    known = set(mods)
    bad = []
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: relative import")
            for name in _module_names(node):
                if name.split(".")[0] in PACKAGES and name not in known:
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {name} is no module")
    assert not bad, "\n".join(bad)


def test_every_harness_module_sits_in_a_layer_folder():
    loose = [p.name for p in (REPO / "harness").glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"harness/{loose[0]}: move it into core/, suite/, reports/ or commands/"
    for module in _modules():
        _layer(module)


@pytest.mark.parametrize("statement", ["    from harness.commands.eval import handle\n",
                                       "    import harness.reports.tables\n",
                                       "    importlib.import_module('harness.commands.run')\n",
                                       "    ENTRY = 'harness.reports.view:write_view'\n",
                                       "    from training import loop\n"])
def test_a_lazy_upward_import_in_the_core_is_caught(statement):
    """A core module that imports a command, a report or training inside a function fails the layer check."""
    probe = REPO / "harness" / "core" / "_layer_probe_tmp.py"
    try:
        probe.write_text(f"import importlib\n\n\ndef later():\n{statement}")
        graph = _graph()
    finally:
        probe.unlink()
    assert [v for v in _violations(graph) if v.startswith("harness.core._layer_probe_tmp ")], statement


def test_reports_and_the_suite_stay_apart():
    assert _violations({"harness.reports.tables": {"harness.suite.runner"}})
    assert _violations({"harness.suite.runner": {"harness.commands.eval"}})
    assert not _violations({"harness.commands.eval": {"harness.suite.runner", "harness.reports.summary"}})


def test_no_import_cycles():
    graph = _graph(entry_points=False)
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


MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _reason_given(lines: list[str], start: int) -> bool:
    """A long module or function says why at its top: "long because ..." in its first lines."""
    return any("long because" in line.lower() for line in lines[start:start + 4])


def test_no_module_or_function_outgrows_one_job():
    """No module over 600 lines and no function over 80 without a reason written at its top."""
    too_long = []
    for path in _modules().values():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES and not _reason_given(lines, 0):
            too_long.append(f"{path.relative_to(REPO)}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES and not _reason_given(lines, node.body[0].lineno - 1):
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {size} lines")
    assert not too_long, "\n".join(too_long)
