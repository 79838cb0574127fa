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

Data access: the store's SQL lives here and in rag/store/queries.py, nowhere else.  This module
holds the file's side (schema, connections, transactions, the ``meta`` manifest) and every
statement that changes rows; queries.py holds the statements that read rows (snapshot reads
included).  Statements are functions named for what they do; none of them begins or ends a
transaction, so the caller's ``transaction`` decides what commits together.
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
LEXICAL_VERSION_KEY = "lexical_version"  # meta: the version index/lexical/ reflects (-1: rebuild it)
# Compaction deletes purged passages this many per statement (SQLite caps a statement's parameters).
PURGE_CHUNK = 500

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
            # transaction open.
            roll_back_open(self.conn)
            raise


def roll_back_open(conn: sqlite3.Connection) -> None:
    """End a transaction that an error left open, so that the connection's next BEGIN works."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def get_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def set_meta(conn: sqlite3.Connection, **values: Any) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", ((k, json.dumps(v)) for k, v in values.items()))


def version_of(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return int(json.loads(row[0])) if row else 0


def lexical_version(conn: sqlite3.Connection) -> int:
    """The version the BM25 folder reflects (-1: none, rebuild it)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (LEXICAL_VERSION_KEY,)).fetchone()
    return int(row[0]) if row else -1


def set_lexical_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (LEXICAL_VERSION_KEY, str(int(version))))


def drop_tables(conn: sqlite3.Connection, tables: tuple[str, ...]) -> None:
    """Tables of an older format (rag/store/legacy.py)."""
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


# ----------------------------------------------------------------------------- rows written
# Every statement that changes rows is below; rag/store/queries.py reads them.  Like the reads,
# these never begin or end a transaction: the caller decides what commits together.
def insert_document(conn: sqlite3.Connection, document: Document, origin: str, generation: int, passages: int,
                    version: int) -> None:
    conn.execute("INSERT INTO documents(generation, document_id, origin, content_hash, source_path, passages, characters,"
                 " added, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (generation, document.document_id, origin, document.content_hash, document.source_path, passages,
                  len(document.text), version, json.dumps(document.to_row(), ensure_ascii=False)))


def insert_paragraphs(conn: sqlite3.Connection, generation: int, paragraphs: list[Paragraph]) -> None:
    conn.executemany("INSERT INTO paragraphs(generation, paragraph_index, row) VALUES (?, ?, ?)",
                     ((generation, p.paragraph_index, json.dumps(asdict(p), ensure_ascii=False)) for p in paragraphs))


def insert_passages(conn: sqlite3.Connection, generation: int, segment: str, version: int, passages: list[Passage]) -> None:
    conn.executemany("INSERT INTO passages(passage_id, generation, paragraph_index, segment, added, row) VALUES (?, ?, ?, ?, ?, ?)",
                     ((p.passage_id, generation, p.paragraph_index, segment, version, json.dumps(_passage_row(p), ensure_ascii=False))
                      for p in passages))


def _passage_row(passage: Passage) -> dict[str, Any]:
    row = asdict(passage)
    del row["passage_id"]  # the row's key
    return row


def tombstone_generation(conn: sqlite3.Connection, generation: int, version: int) -> None:
    """A stored document and its passages are removed at ``version`` (their rows stay until compaction)."""
    conn.execute("UPDATE passages SET removed = ? WHERE generation = ?", (version, generation))
    conn.execute("UPDATE documents SET removed = ? WHERE generation = ?", (version, generation))


def delete_corpus(conn: sqlite3.Connection) -> None:
    """Every document, paragraph, passage and segment row: a rebuild stores them all again."""
    for table in ("documents", "paragraphs", "passages", "segments"):
        conn.execute(f"DELETE FROM {table}")


def register_segment(conn: sqlite3.Connection, name: str, count: int, version: int) -> None:
    conn.execute("INSERT INTO segments(name, count, added) VALUES (?, ?, ?)", (name, count, version))


def rename_segment(conn: sqlite3.Connection, name: str, new_name: str, count: int) -> None:
    """A rebuilt segment takes a damaged one's place, its passages' rows included."""
    conn.execute("UPDATE passages SET segment = ? WHERE segment = ?", (new_name, name))
    conn.execute("UPDATE segments SET name = ?, count = ? WHERE name = ?", (new_name, count, name))


def merge_segments(conn: sqlite3.Connection, merged: list[str], new_name: str | None, count: int, version: int) -> None:
    """The ``merged`` segments' passages move to ``new_name`` of ``count`` rows (None: none of
    them is left), and the merged segments are unregistered."""
    marks = ",".join("?" * len(merged))
    if new_name is not None:
        conn.execute(f"UPDATE passages SET segment = ? WHERE segment IN ({marks})", (new_name, *merged))
        register_segment(conn, new_name, count, version)
    conn.execute(f"DELETE FROM segments WHERE name IN ({marks})", merged)


def purge_passages(conn: sqlite3.Connection, passage_ids: list[int]) -> None:
    """Delete tombstoned passages for good, then the paragraphs and removed document rows of the
    stored documents left without a passage."""
    generations: set[int] = set()
    for start in range(0, len(passage_ids), PURGE_CHUNK):
        chunk = passage_ids[start : start + PURGE_CHUNK]
        marks = ",".join("?" * len(chunk))
        generations.update(r[0] for r in conn.execute(f"SELECT DISTINCT generation FROM passages WHERE passage_id IN ({marks})", chunk))
        conn.execute(f"DELETE FROM passages WHERE passage_id IN ({marks})", chunk)
    for generation in generations:
        if conn.execute("SELECT 1 FROM passages WHERE generation = ? LIMIT 1", (generation,)).fetchone() is None:
            conn.execute("DELETE FROM paragraphs WHERE generation = ?", (generation,))
            conn.execute("DELETE FROM documents WHERE generation = ? AND removed IS NOT NULL", (generation,))


def delete_lexical_totals(conn: sqlite3.Connection) -> None:
    """Every passage's token count and the totals: a BM25 rebuild records them again."""
    conn.execute(f"DELETE FROM {LEXICAL_LENGTHS}")
    conn.execute(f"DELETE FROM {LEXICAL_STATS}")


def record_lexical_changes(conn: sqlite3.Connection, added: list[tuple[int, int]], removed: list[int]) -> None:
    """Keep (N, total tokens) equal to what tantivy holds once it has indexed ``added`` ((passage
    id, tokens)) and deleted ``removed``; idempotent, like the replay that calls it."""
    passages = tokens = 0
    for pid in removed:
        row = conn.execute(f"SELECT tokens FROM {LEXICAL_LENGTHS} WHERE passage_id = ?", (pid,)).fetchone()
        if row is not None:
            conn.execute(f"DELETE FROM {LEXICAL_LENGTHS} WHERE passage_id = ?", (pid,))
            passages, tokens = passages - 1, tokens - int(row[0])
    for pid, n in added:
        row = conn.execute(f"SELECT tokens FROM {LEXICAL_LENGTHS} WHERE passage_id = ?", (pid,)).fetchone()
        passages, tokens = passages + (row is None), tokens + n - (int(row[0]) if row else 0)
    conn.executemany(f"INSERT OR REPLACE INTO {LEXICAL_LENGTHS}(passage_id, tokens) VALUES (?, ?)", added)
    conn.execute(f"INSERT INTO {LEXICAL_STATS}(id, passages, tokens) VALUES (0, ?, ?) ON CONFLICT(id) DO UPDATE"
                 " SET passages = passages + excluded.passages, tokens = tokens + excluded.tokens", (passages, tokens))
