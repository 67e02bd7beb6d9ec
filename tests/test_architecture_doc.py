"""docs/architecture.md matches the code: every path and module it names exists, and the README links it."""

from __future__ import annotations

import importlib
import importlib.util
import re

from conftest import REPO

DOC = REPO / "docs" / "architecture.md"
TOP = ("harness", "evaluators", "training", "tests", "results", "configs", "benchmarks", "docs")


def _code_spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", DOC.read_text())


def _paths() -> list[str]:
    """Repository paths in code spans (`harness/core/cache.py`, `training/methods/`), placeholders (`<name>`) and
    globs left out."""
    found = []
    for span in _code_spans():
        for word in span.split():
            word = word.rstrip(".,;:)")
            if word.split("/")[0] in TOP and "/" in word and not re.search(r"[<>*{}]", word):
                found.append(word)
    return found


def _dotted() -> list[str]:
    """Dotted names in code spans that start at a project package (`harness.suite.runner.checkpoint_evaluator`)."""
    return [s for s in _code_spans() if re.fullmatch(r"(harness|evaluators|training)(\.\w+)+", s)]


def test_the_doc_names_paths_and_modules():
    assert len(_paths()) > 40 and len(_dotted()) >= 3


def test_every_path_the_doc_names_exists():
    missing = sorted({p for p in _paths() if not (REPO / p).exists()})
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_dotted_name_the_doc_names_resolves():
    """`a.b.c.name`: the longest importable module prefix, then attributes down to the end."""
    for name in _dotted():
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            module = ".".join(parts[:cut])
            try:
                if importlib.util.find_spec(module) is not None:
                    break
            except ModuleNotFoundError:  # a prefix that is a module, not a package
                continue
        obj = importlib.import_module(module)
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"docs/architecture.md names {name}: {module} has no {'.'.join(parts[cut:])}"
            obj = getattr(obj, attr)


def test_readme_links_the_architecture_page():
    assert "docs/architecture.md" in (REPO / "README.md").read_text()
