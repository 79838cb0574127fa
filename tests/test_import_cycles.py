"""rag/ has no import cycle (issue 22, requirement 2).

Every ``import rag.x`` / ``from rag.x import y`` / ``from . import y`` anywhere in a module is an
edge: at the top, inside a function (a lazy import that only dodges a cycle still ties the two
modules together) and under ``if TYPE_CHECKING:`` (the type checker follows it).  ``from rag.a
import b`` is an edge to ``rag.a.b`` when that is a module, else to ``rag.a``.  A package's
``__init__`` is a node like any module; importing ``rag.a.b`` does not count as an edge to
``rag.a`` (Python runs ``rag/a/__init__.py`` first, but that file only matters when it imports
back, which is then its own edge).  The graph is read with ``ast``: nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rag"


def _modules() -> dict[str, Path]:
    """{dotted name: file} of every module under rag/."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` is, or the longest module prefix of it (``rag.a.b.attr`` -> ``rag.a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """{module: the rag modules it imports}."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the package that holds this module
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    origin = ".".join([*base, node.module] if node.module else base)
                else:
                    origin = node.module or ""
                targets = [f"{origin}.{alias.name}" for alias in node.names]
            for target in targets:
                if target == "rag" or target.startswith("rag."):
                    resolved = _resolve(target, modules)
                    if resolved is not None and resolved != module:
                        edges.add(resolved)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative: the graph is small, but recursion depth should not depend on it.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_walker_sees_lazy_and_type_checking_imports():
    graph = import_graph()
    assert len(graph) > 50 and "rag.store.corpus_index" in graph
    assert "rag.store.database" in graph["rag.store.corpus_index"]  # from rag.store import database as db
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_rag_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles in rag/ (each line: modules that import each other in a circle):\n" + \
        "\n".join(" <-> ".join(c) for c in found)


def test_the_pipeline_and_the_api_reach_the_store_only_through_its_contract():
    """Issue 22, requirement 5: above rag/store, only the factory (which backend) and the
    Protocols (what it offers) are imported; compaction, the writers and SQL stay below."""
    graph = import_graph()
    allowed = {"rag.store.factory", "rag.store.protocol"}
    above = [m for m in graph if m == "rag.pipeline" or m == "rag.api" or m.startswith("rag.api.")]
    reaching = {m: sorted(e for e in graph[m] if e.startswith("rag.store") and e not in allowed) for m in above}
    assert "rag.api.routes_documents" in above and not {m: e for m, e in reaching.items() if e}
