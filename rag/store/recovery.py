"""Rebuilding a damaged vector segment from store.sqlite (issue 20, item 9).

Everything in a segment folder is derived: ``ids.npy`` is the list of passages SQLite assigns
to the segment, ``dense/`` (FAISS) and ``segment.json`` are built from ``vectors.npy``, and the
vectors are the encoder's output for the passages' texts, which SQLite keeps.  So a segment
whose files cannot be opened (``load_segment`` raises IndexDamaged) is rebuilt as a new
segment: from its own vectors.npy when that file is intact (a damaged dense/ or segment.json
costs one FAISS build, no encoder), otherwise by re-embedding its passages with the index's
model.  The swap is one transaction, like a compaction's: a new version that names the new
segment instead of the damaged one, so every process reloads onto it.  The lexical side has
its own rebuild (``lexical.sync`` rebuilds an unreadable folder from SQLite).

The work is done outside the writer lock and only the commit takes it (item 8): a repair that
re-embeds a large segment does not hold up uploads.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import IndexDamaged
from rag.settings import Settings
from rag.store import database as db
from rag.store import lexical
from rag.store import queries
from rag.store.files import load_array
from rag.store.maintenance import writer_lock
from rag.store.prepare import embed_passages
from rag.store.segments import build_segment, publish, remove_segment, segments_root

if TYPE_CHECKING:
    from rag.embedding import Encoder

log = logging.getLogger(__name__)


def repair_segment(index_dir: Path, name: str, settings: Settings | None, encoder: Encoder, cause: IndexDamaged) -> None:
    """Replace the damaged segment ``name`` by one rebuilt from store.sqlite; raises IndexDamaged
    (``cause``'s message, with why) when its vectors cannot be recomputed by this encoder."""
    # The index's own settings come from the caller; without them, the declared defaults (never
    # the environment: only the CLI and the app factory read it, tests/test_configuration.py).
    settings = settings if settings is not None else Settings.model_construct()
    index_dir = Path(index_dir)
    started = time.perf_counter()
    conn = db.connect(index_dir / db.DATABASE_FILE)
    try:
        with db.transaction(conn, "DEFERRED"):
            meta = db.get_meta(conn)
            rows = queries.segment_passage_rows(conn, name)
            registered = queries.segment_exists(conn, name)
        if not registered:
            return  # compacted or repaired by another process meanwhile: the next load lists its successor
        ids = np.array([pid for pid, _ in rows], dtype=np.int64)
        dimension = int(meta.get("dimension", 0))
        vectors = _intact_vectors(segments_root(index_dir) / name, ids, dimension)
        how = "its intact vectors.npy"
        if vectors is None:
            if encoder.name != meta.get("embedding_model"):
                raise IndexDamaged(f"{cause}; its vectors cannot be recomputed: the index was built with "
                                   f"{meta.get('embedding_model')!r}, this process loads {encoder.name!r}",
                                   segment=name, path=cause.path) from cause
            vectors = _embed(encoder, rows, settings)
            how = f"{len(rows)} passages re-embedded"
        new_name = _commit(index_dir, conn, name, build_segment(index_dir, ids, vectors, settings), len(ids))
    finally:
        conn.close()
    if new_name is not None:
        log.warning("%s: rebuilt as segment %s from store.sqlite (%s) in %.1f s", cause, new_name, how, time.perf_counter() - started)


def _commit(index_dir: Path, conn: sqlite3.Connection, name: str, folder: Path, count: int) -> str | None:
    """Name the rebuilt segment instead of the damaged one, in one transaction under the lock."""
    with writer_lock(index_dir):
        new_name = None
        try:
            with db.transaction(conn):
                if queries.segment_exists(conn, name):
                    version = db.version_of(conn) + 1
                    new_name = publish(folder)
                    db.rename_segment(conn, name, new_name, count)
                    db.set_meta(conn, version=version)
                    if lexical.recorded_version(conn) == version - 1:
                        lexical.record_unchanged(conn, version)  # no passage's text changed
                # else: another process repaired or merged it while we rebuilt
        except BaseException:
            remove_segment(index_dir, new_name or folder.name)  # nothing names it
            raise
        if new_name is None:
            remove_segment(index_dir, folder.name)
        else:
            remove_segment(index_dir, name)  # the damaged folder; no commit names it now
    return new_name


def _intact_vectors(folder: Path, ids: np.ndarray, dimension: int) -> np.ndarray | None:
    """The segment's own vectors when vectors.npy (and ids.npy, when readable) match SQLite's rows."""
    try:
        vectors = load_array(folder / "vectors.npy")
    except (OSError, ValueError, EOFError):  # np.load: EOFError on an empty file
        return None
    if vectors.shape != (len(ids), dimension) or vectors.dtype != np.float32 or not np.isfinite(vectors).all():
        return None
    try:
        stored_ids = load_array(folder / "ids.npy")
    except (OSError, ValueError, EOFError):
        return vectors  # rows are in passage-id order (builder and compaction write them sorted)
    return vectors if np.array_equal(stored_ids, ids) else None


def _embed(encoder: Encoder, rows: list[tuple[int, str]], settings: Settings) -> np.ndarray:
    return embed_passages(encoder, [queries.passage_from(pid, row) for pid, row in rows], settings.embedding_batch_size)
