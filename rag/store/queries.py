"""Every statement that reads the rows of ``store.sqlite``, named for what it reads.

The other half of the embedded store's data access is rag/store/database.py (the schema,
connections, transactions, the ``meta`` manifest and every statement that changes rows); no
other module writes SQL.  These functions take the caller's connection and never begin or end
a transaction (a load reads several of them in one), and they decode rows, so callers see
Documents, Paragraphs and Passages, never JSON.

Snapshot reads (``visible_*``) take the version a reader holds and see the rows with ``added
<= version < removed`` (rag/store/database.py explains the versioning); the others read the
latest rows, as writers and maintenance do.  Each costs what its statement cost where it was
written before: the per-id loops are the ones their callers always ran, and bulk reads are one
statement read in batches.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from rag.store.database import LEXICAL_STATS
from rag.store.protocol import StoredDocument
from rag.types import Document, Paragraph, Passage

VISIBLE = "added <= :v AND (removed IS NULL OR removed > :v)"


def _visible(alias: str) -> str:
    """``VISIBLE`` for a table alias."""
    return f"{alias}.added <= :v AND ({alias}.removed IS NULL OR {alias}.removed > :v)"


class LiveDocument(NamedTuple):
    """What a write needs of a live document to decide what it changes."""

    generation: int
    origin: str
    source_path: str


# ----------------------------------------------------------------------------- row decoding
def passage_from(passage_id: int, row: str) -> Passage:
    """A passage from a row that ``segment_passage_rows`` read."""
    return Passage(passage_id=passage_id, **json.loads(row))


def _paragraph_from(row: str) -> Paragraph:
    return Paragraph(**json.loads(row))


def _stored_from(row: str, origin: str) -> StoredDocument:
    return StoredDocument(Document.from_row(json.loads(row)), origin)


# ----------------------------------------------------------------------------- latest rows (writers, maintenance)
def live_origin_and_hash(conn: sqlite3.Connection, document_id: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT origin, content_hash FROM documents WHERE removed IS NULL AND document_id = ?", (document_id,)).fetchone()
    return (row[0], row[1]) if row is not None else None


def live_documents(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> dict[str, LiveDocument]:
    """The live documents with these ids (None: all of them), one indexed lookup per id."""
    sql = "SELECT document_id, generation, origin, source_path FROM documents WHERE removed IS NULL"
    if ids is None:
        return {d: LiveDocument(g, o, s) for d, g, o, s in conn.execute(sql)}
    found = {}
    for doc_id in set(ids):
        row = conn.execute(sql + " AND document_id = ?", (doc_id,)).fetchone()
        if row:
            found[row[0]] = LiveDocument(row[1], row[2], row[3])
    return found


def live_stored_documents(conn: sqlite3.Connection) -> list[StoredDocument]:
    """Every live document with its text, by id (a rebuild re-stores them)."""
    rows = conn.execute("SELECT document_id, row, origin FROM documents WHERE removed IS NULL ORDER BY document_id")
    return [_stored_from(r, o) for _, r, o in rows]


def live_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(documents, passages) live now."""
    row = conn.execute("SELECT count(*), coalesce(sum(passages), 0) FROM documents WHERE removed IS NULL").fetchone()
    return row[0], row[1]


def content_hash_of(conn: sqlite3.Connection, generation: int) -> str:
    return conn.execute("SELECT content_hash FROM documents WHERE generation = ?", (generation,)).fetchone()[0]


def passages_of_generations(conn: sqlite3.Connection, generations: list[int]) -> int:
    """The passages the stored documents ``generations`` had (a write's few replaced ones)."""
    return sum(conn.execute("SELECT passages FROM documents WHERE generation = ?", (g,)).fetchone()[0] for g in generations)


def segment_names(conn: sqlite3.Connection) -> list[str]:
    """The registered segments, oldest first (the order a snapshot searches them in)."""
    return [r[0] for r in conn.execute("SELECT name FROM segments ORDER BY added, name")]


def segment_sizes(conn: sqlite3.Connection) -> dict[str, int]:
    """{segment: rows it was written with}."""
    return dict(conn.execute("SELECT name, count FROM segments").fetchall())


def segment_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM segments WHERE name = ?", (name,)).fetchone() is not None


def segment_passage_rows(conn: sqlite3.Connection, name: str) -> list[tuple[int, str]]:
    """(passage id, row) of the segment's passages, tombstoned ones included, by id; ``passage_from``
    decodes a row (a repair decodes only when it has to re-embed)."""
    return conn.execute("SELECT passage_id, row FROM passages WHERE segment = ? ORDER BY passage_id", (name,)).fetchall()


def tombstones_by_segment(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """{segment: ids of its removed passages} (the passages_removed index)."""
    dead: dict[str, list[int]] = {}
    for segment, pid in conn.execute("SELECT segment, passage_id FROM passages WHERE removed IS NOT NULL"):
        dead.setdefault(segment, []).append(pid)
    return dead


def max_passage_id(conn: sqlite3.Connection) -> int | None:
    return conn.execute("SELECT max(passage_id) FROM passages").fetchone()[0]


# ----------------------------------------------------------------------------- BM25 bookkeeping
def live_passage_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM passages WHERE removed IS NULL").fetchone()[0]


def live_passage_batches(conn: sqlite3.Connection, size: int) -> Iterator[list[Passage]]:
    """Every live passage, by id, ``size`` at a time (the query runs now, rows are read per batch)."""
    return _batches(conn.execute("SELECT passage_id, row FROM passages WHERE removed IS NULL ORDER BY passage_id"), size)


def passage_ids_removed_since(conn: sqlite3.Connection, version: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT passage_id FROM passages WHERE removed > ?", (version,))]


def passage_count_added_since(conn: sqlite3.Connection, version: int) -> int:
    return conn.execute("SELECT count(*) FROM passages WHERE added > ? AND removed IS NULL", (version,)).fetchone()[0]


def passage_batches_added_since(conn: sqlite3.Connection, version: int, size: int) -> Iterator[list[Passage]]:
    """The passages added after ``version`` and still live, ``size`` at a time, in no order: an
    ORDER BY passage_id made SQLite scan the whole table (280 ms at 10^6 passages) instead of
    following the index on ``added``."""
    return _batches(conn.execute("SELECT passage_id, row FROM passages WHERE added > ? AND removed IS NULL", (version,)), size)


def _batches(cursor: sqlite3.Cursor, size: int) -> Iterator[list[Passage]]:
    while rows := cursor.fetchmany(size):
        yield [passage_from(pid, row) for pid, row in rows]


def lexical_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(passages, tokens) in the lexical index."""
    row = conn.execute(f"SELECT passages, tokens FROM {LEXICAL_STATS} WHERE id = 0").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


# ----------------------------------------------------------------------------- snapshot reads (version v)
def visible_passages_with_paragraphs(conn: sqlite3.Connection, version: int,
                                     passage_ids: list[int]) -> dict[int, tuple[Passage, Paragraph]]:
    params: dict[str, Any] = {"v": version, **{f"p{i}": int(pid) for i, pid in enumerate(passage_ids)}}
    marks = ",".join(f":p{i}" for i in range(len(passage_ids)))
    rows = conn.execute(
        "SELECT ps.passage_id, ps.row, pg.row FROM passages ps JOIN paragraphs pg"
        " ON pg.generation = ps.generation AND pg.paragraph_index = ps.paragraph_index"
        f" WHERE ps.passage_id IN ({marks}) AND {_visible('ps')}",
        params).fetchall()
    return {pid: (passage_from(pid, p), _paragraph_from(g)) for pid, p, g in rows}


def visible_paragraphs(conn: sqlite3.Connection, version: int, document_id: str) -> list[Paragraph]:
    rows = conn.execute(
        "SELECT pg.row FROM documents d JOIN paragraphs pg ON pg.generation = d.generation"
        f" WHERE d.document_id = :d AND {_visible('d')}"
        " ORDER BY pg.paragraph_index", {"d": document_id, "v": version}).fetchall()
    return [_paragraph_from(r[0]) for r in rows]


def visible_document_infos(conn: sqlite3.Connection, version: int, limit: int | None, after: str | None) -> list[dict]:
    """Metadata with origin, passages and characters (no text, no blocks) of the documents after
    ``after`` by id, at most ``limit``: a page costs its rows (the documents_by_id index)."""
    rows = conn.execute(
        f"SELECT row, origin, passages, characters FROM documents WHERE {VISIBLE}"
        f"{' AND document_id > :after' if after is not None else ''} ORDER BY document_id"
        f"{' LIMIT :limit' if limit is not None else ''}", {"v": version, "after": after, "limit": limit})
    infos = []
    for row, origin, passages, characters in rows:
        data = json.loads(row)
        data.pop("text", None)
        data.pop("blocks", None)
        infos.append({**data, "origin": origin, "passages": passages, "characters": characters})
    return infos


def visible_passage_count(conn: sqlite3.Connection, version: int, document_id: str) -> int:
    row = conn.execute(f"SELECT passages FROM documents WHERE document_id = :d AND {VISIBLE}",
                       {"d": document_id, "v": version}).fetchone()
    return int(row[0]) if row else 0


def visible_source_url(conn: sqlite3.Connection, version: int, document_id: str) -> str:
    row = conn.execute(f"SELECT json_extract(row, '$.source_url') FROM documents WHERE document_id = :d AND {VISIBLE}",
                       {"d": document_id, "v": version}).fetchone()
    return (row[0] or "") if row else ""


def visible_largest_documents(conn: sqlite3.Connection, version: int, limit: int) -> dict[str, int]:
    """{document id: characters} of the ``limit`` largest (the documents_by_size index)."""
    rows = conn.execute(f"SELECT document_id, characters FROM documents WHERE {VISIBLE}"
                        " ORDER BY characters DESC, document_id LIMIT :n", {"v": version, "n": limit})
    return dict(rows.fetchall())


def visible_document(conn: sqlite3.Connection, version: int, document_id: str) -> StoredDocument | None:
    row = conn.execute(f"SELECT row, origin FROM documents WHERE {VISIBLE} AND document_id = :d ORDER BY document_id",
                       {"v": version, "d": document_id}).fetchone()
    return _stored_from(row[0], row[1]) if row is not None else None


def visible_documents(conn: sqlite3.Connection, version: int) -> list[StoredDocument]:
    """Every document with its text, by id (one query: tools)."""
    rows = conn.execute(f"SELECT row, origin FROM documents WHERE {VISIBLE} ORDER BY document_id", {"v": version})
    return [_stored_from(r, o) for r, o in rows]


def has_visible_document(conn: sqlite3.Connection, version: int, document_id: object) -> bool:
    sql = f"SELECT 1 FROM documents WHERE document_id = :d AND {VISIBLE}"
    return conn.execute(sql, {"d": document_id, "v": version}).fetchone() is not None


def visible_document_ids(conn: sqlite3.Connection, version: int) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT document_id FROM documents WHERE {VISIBLE} ORDER BY document_id", {"v": version})]


def visible_passages(conn: sqlite3.Connection, version: int) -> Iterator[Passage]:
    """Every passage by id (read at once, decoded as iterated: tools and tests)."""
    rows = conn.execute(f"SELECT passage_id, row FROM passages WHERE {VISIBLE} ORDER BY passage_id", {"v": version}).fetchall()
    return (passage_from(pid, row) for pid, row in rows)
