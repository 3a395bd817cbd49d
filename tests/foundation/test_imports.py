"""The layering the data flow promises, read from the source: no import cycles and no import from a
higher layer — function-level imports included (they run too); imports under ``TYPE_CHECKING`` are
left out (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: data → models → probe → explain / analysis / anneal → evaluate → report → pipeline → cli
LAYERS = {
    "errors": 0, "io": 0, "progress": 0, "seeding": 0, "settings": 0, "threads": 0, "stages": 0, "machine": 0,
    "claims": 0,
    "data": 1, "models": 2, "probe": 3, "explain": 4, "analysis": 4, "anneal": 4, "evaluate": 5,
    "report": 6, "pipeline": 7, "cli": 8,
    "__main__": 9, "__init__": 0,  # the root package holds only __version__
}  # fmt: skip


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _typing_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for body in node.body for n in ast.walk(body))
    return skip


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of qxai it imports}`` (a name imported from a package that is a module of
    its own counts as that module)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        mod = _module(path)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _typing_only(tree)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.split(".")[0] == "qxai")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                if base.split(".")[0] != "qxai":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    as_path = SRC / full.replace(".", "/")
                    own = as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file()
                    targets.add(full if own else base)
        graph[mod] = targets - {mod}
    return graph


def _layer(mod: str) -> int:
    parts = mod.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else LAYERS["__init__"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_every_module():
    graph = import_graph()
    assert "qxai.pipeline.stage" in graph and "qxai.io" in graph["qxai.pipeline.stage"]
    # a function-level import is an edge too
    assert "qxai.pipeline.cluster" in graph["qxai.pipeline.shards"]


def test_the_checker_finds_a_planted_cycle():  # the control: the checks can fail
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_no_module_imports_from_a_higher_layer():
    graph = import_graph()
    upward = sorted(
        f"{mod} → {dep}" for mod, deps in graph.items() for dep in deps if _layer(dep) > _layer(mod)
    )
    if upward:
        pytest.fail("imports from a higher layer (data → … → cli):\n" + "\n".join(upward))


def private_imports(source: str, module: str = "qxai.x") -> list[str]:
    """``"module ← name"`` for each ``_private`` name ``source`` imports from a qxai module (dunders
    are not private): another module's ``_helper`` is an interface nobody declared."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "qxai"):
            found += [f"{module} ← {node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]  # fmt: skip
    return found


def test_the_private_import_check_can_fail():  # the control
    source = "def f():\n    from qxai.pipeline.evaluate import _key, run_evaluate\n"
    assert private_imports(source) == ["qxai.x ← qxai.pipeline.evaluate._key"]
    assert private_imports("from numpy import _core\nfrom qxai import __version__\n") == []


def test_no_module_imports_another_modules_private_names():
    found = sorted(
        hit for path in SRC.rglob("*.py")
        for hit in private_imports(path.read_text(encoding="utf-8"), _module(path))
    )  # fmt: skip
    if found:
        pytest.fail("private names imported across modules (make them public or move them):\n"
                    + "\n".join(found))
