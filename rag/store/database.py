"""The index's texts and bookkeeping in one SQLite database (WAL): ``index/store.sqlite``.

Why SQLite: the documents, paragraphs and passages used to be JSONL files loaded into every
process (1.36 GB resident at 10^5 passages, issue 13) and rewritten on every write.  In SQLite a
query fetches only the rows it returns, a write touches only the rows of its document, and one
transaction commits the texts, the tombstones and the list of vector segments together: a
process killed at any point leaves the previous commit.  The BM25 index (tantivy,
rag/store/lexical.py) is derived from these rows and records which version it reflects.
WAL mode lets readers in other processes go on while a writer commits.

Versioning: every committed write increments ``meta.version``.  Rows carry the version that
``added`` them and the one that ``removed`` them (NULL while live), so a reader holding version
V sees rows with ``added <= V < removed``: a request keeps one consistent snapshot even while
writers commit.  A document's paragraphs and passages hang off its ``generation`` (one stored
version of a document), never off its id, so a replaced document's old passages still find
their own paragraphs.  Removed rows stay until compaction rewrites their vector segment.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.types import Document, Paragraph, Passage

DATABASE_FILE = "store.sqlite"
# A writer waits this long for another process's commit (they are milliseconds long; the
# writer lock already serializes whole writes).
BUSY_TIMEOUT_MS = 30_000
# BM25's bookkeeping (rag/store/lexical.py): tokens per indexed passage (|d|, to keep the totals
# on deletes), and one row of passages and tokens indexed (N and N * avgdl).
LEXICAL_LENGTHS = "lexical_lengths"
LEXICAL_STATS = "lexical_stats"

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS documents(
        generation INTEGER PRIMARY KEY, document_id TEXT NOT NULL, origin TEXT NOT NULL,
        content_hash TEXT NOT NULL, source_path TEXT NOT NULL, passages INTEGER NOT NULL,
        characters INTEGER NOT NULL, added INTEGER NOT NULL, removed INTEGER, row TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS documents_live ON documents(document_id) WHERE removed IS NULL",
    "CREATE INDEX IF NOT EXISTS documents_by_id ON documents(document_id, added)",
    # The largest documents (the web page's example questions) without sorting every document
    # row: 4 s at 10^6 documents without it.
    "CREATE INDEX IF NOT EXISTS documents_by_size ON documents(characters DESC, document_id)",
    """CREATE TABLE IF NOT EXISTS paragraphs(generation INTEGER NOT NULL, paragraph_index INTEGER NOT NULL,
        row TEXT NOT NULL, PRIMARY KEY(generation, paragraph_index)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS passages(passage_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL,
        paragraph_index INTEGER NOT NULL, segment TEXT NOT NULL, added INTEGER NOT NULL, removed INTEGER,
        row TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS passages_generation ON passages(generation)",
    "CREATE INDEX IF NOT EXISTS passages_segment ON passages(segment)",
    "CREATE INDEX IF NOT EXISTS passages_removed ON passages(removed) WHERE removed IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS segments(name TEXT PRIMARY KEY, count INTEGER NOT NULL, added INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {LEXICAL_LENGTHS}(passage_id INTEGER PRIMARY KEY, tokens INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {LEXICAL_STATS}(id INTEGER PRIMARY KEY CHECK (id = 0), passages INTEGER NOT NULL, tokens INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS passages_added ON passages(added)",  # what a BM25 sync replays
]
VISIBLE = "added <= :v AND (removed IS NULL OR removed > :v)"


def visible(alias: str) -> str:
    """``VISIBLE`` for a table alias: rows of snapshot ``:v``."""
    return f"{alias}.added <= :v AND ({alias}.removed IS NULL OR {alias}.removed > :v)"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns (NORMAL in WAL mode may lose the last commits
    # on power loss; one fsync per write is noise next to embedding the document).
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def create(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    with transaction(conn):
        for statement in SCHEMA:
            conn.execute(statement)
    return conn


class transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection, mode: str = "IMMEDIATE"):
        self.conn, self.mode = conn, mode

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, kind, value, traceback) -> None:
        if kind:
            self.conn.execute("ROLLBACK")
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT that fails (SQLITE_FULL writing the WAL on a full disk) may leave the
            # transaction open: end it, so that the connection's next BEGIN works.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


def get_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def set_meta(conn: sqlite3.Connection, **values: Any) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", ((k, json.dumps(v)) for k, v in values.items()))


def version_of(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return int(json.loads(row[0])) if row else 0


# ----------------------------------------------------------------------------- rows
def document_row(document: Document, origin: str, generation: int, passages: int, version: int) -> tuple:
    return (generation, document.document_id, origin, document.content_hash, document.source_path, passages,
            len(document.text), version, json.dumps(document.to_row(), ensure_ascii=False))


def insert_document(conn: sqlite3.Connection, row: tuple) -> None:
    conn.execute("INSERT INTO documents(generation, document_id, origin, content_hash, source_path, passages, characters,"
                 " added, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def insert_paragraphs(conn: sqlite3.Connection, generation: int, paragraphs: list[Paragraph]) -> None:
    conn.executemany("INSERT INTO paragraphs(generation, paragraph_index, row) VALUES (?, ?, ?)",
                     ((generation, p.paragraph_index, json.dumps(asdict(p), ensure_ascii=False)) for p in paragraphs))


def insert_passages(conn: sqlite3.Connection, generation: int, segment: str, version: int, passages: list[Passage]) -> None:
    conn.executemany("INSERT INTO passages(passage_id, generation, paragraph_index, segment, added, row) VALUES (?, ?, ?, ?, ?, ?)",
                     ((p.passage_id, generation, p.paragraph_index, segment, version, json.dumps(_passage_row(p), ensure_ascii=False))
                      for p in passages))


def _passage_row(passage: Passage) -> dict[str, Any]:
    row = asdict(passage)
    del row["passage_id"]
    return row


def passage_from(passage_id: int, row: str) -> Passage:
    return Passage(passage_id=passage_id, **json.loads(row))


def paragraph_from(row: str) -> Paragraph:
    return Paragraph(**json.loads(row))


class Connections:
    """One read connection per thread for one database file (sqlite3 connections are not
    meant to be shared between threads that use them at once)."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn
