"""Older index formats, upgraded in place by ``rag index``.

Format 3 (SQLite FTS5 for BM25) to 4 (tantivy, rag/store/lexical.py): the texts, vectors and
segments stay; the FTS5 tables are dropped and the tantivy index is built from the stored
passages by the write's lexical sync (tokenising ~10^4 passages a second; nothing re-embedded).

Format 2 (one folder per version, JSONL texts, ``CURRENT``): read once to upgrade.

``rag index`` on such a folder re-stores its documents in format 3 (re-embedding them: the
old vectors came from a whole-corpus matrix whose rows no longer map to passage ids) and then
removes the old version folders.  Any other command refuses the folder with a message that
says to run ``rag index`` (rag/store/corpus_index.py).
"""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

from rag.store import database as db
from rag.store import lexical
from rag.store.corpus_index import FORMAT_VERSION, LEGACY_CURRENT_FILE
from rag.store.protocol import StoredDocument
from rag.types import Document

LEGACY_PREFIXES = ("v-", ".tmp-v-")
FTS5_TABLES = ("lexical_instance", "lexical_vocab", "lexical")  # format 3's BM25 (vocabularies first)
log = logging.getLogger(__name__)


def upgrade_format3(conn: sqlite3.Connection) -> bool:
    """Format 3 -> 4 in one transaction (the caller holds the writer lock); True if upgraded."""
    if db.get_meta(conn).get("format_version") != 3:
        return False
    log.warning("upgrading the index from format 3 to %d: BM25 moves from SQLite FTS5 to tantivy (no re-embedding)", FORMAT_VERSION)
    with db.transaction(conn):
        db.drop_tables(conn, FTS5_TABLES)
        lexical.invalidate(conn)
        db.set_meta(conn, format_version=FORMAT_VERSION)
    return True


def legacy_documents(index_dir: Path) -> list[StoredDocument]:
    folder = Path(index_dir) / (Path(index_dir) / LEGACY_CURRENT_FILE).read_text().strip()
    documents = []
    with (folder / "documents.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                origin = row.pop("origin", "file")
                documents.append(StoredDocument(Document.from_row(row), origin))
    return documents


def remove_legacy(index_dir: Path) -> None:
    """Drop format 2's files once format 3 has committed (CURRENT last: until then a crashed
    upgrade is simply run again)."""
    for path in Path(index_dir).iterdir():
        if path.is_dir() and path.name.startswith(LEGACY_PREFIXES):
            shutil.rmtree(path, ignore_errors=True)
    for stale in Path(index_dir).glob(f".{LEGACY_CURRENT_FILE}.*.tmp"):
        stale.unlink(missing_ok=True)
    (Path(index_dir) / LEGACY_CURRENT_FILE).unlink(missing_ok=True)
