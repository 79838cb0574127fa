"""The embedded store's SQL stays behind its data-access layer (issue 22, requirement 5):
rag/store/database.py (schema, connections, transactions, the manifest, every statement that
changes rows) and rag/store/queries.py (every statement that reads rows).  Read with ``ast``:
a call of ``execute``, ``executemany`` or ``executescript`` anywhere else in rag/ fails."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rag"
DATA_ACCESS = {PACKAGE / "store" / "database.py", PACKAGE / "store" / "queries.py"}
EXECUTE = {"execute", "executemany", "executescript"}


def _statement_calls(path: Path) -> list[int]:
    """Lines of ``path`` that run an SQL statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in EXECUTE]


def test_the_walker_finds_statements():
    assert len(_statement_calls(PACKAGE / "store" / "queries.py")) > 20
    assert _statement_calls(PACKAGE / "store" / "database.py")


def test_only_the_data_access_layer_runs_sql():
    found = {str(path.relative_to(PACKAGE.parent)): lines for path in sorted(PACKAGE.rglob("*.py"))
             if path not in DATA_ACCESS and (lines := _statement_calls(path))}
    assert not found, f"SQL outside rag/store/database.py and queries.py (file: lines): {found}"
