"""Background compaction: merge small segments, drop tombstoned rows, re-train IVF.

Policy (tiered, as Lucene's TieredMergePolicy and LSM stores do): segments fall in size tiers
by powers of ``MERGE_FACTOR`` of their live rows; when a tier holds ``MERGE_FACTOR`` segments,
they are merged into one segment of the next tier.  Every vector is therefore rewritten about
log10(N) times over its life (6 times at 10^6), so a write's share of compaction is bounded
and amortised, while a search never visits more than ~``MERGE_FACTOR`` segments per tier
(<= 60 at 10^6, each a few microseconds of FAISS overhead plus its rows).  A segment whose
tombstones reach ``DEAD_FRACTION`` of its rows is rewritten too, so deleted vectors never
cost more than 25% extra scan time and their rows leave the database.

The merged segment is built without the writer lock (uploads go on), from the tombstones as
they were when the merge started; the commit then takes the writer lock for one short
transaction: it names the new segment, drops the merged ones, deletes the rows that were
dead at the start and keeps as tombstones those deleted during the merge.  A compaction killed
at any point leaves either the previous commit (and a ``.merge-*`` folder the next writer
removes) or the new one.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.settings import Settings
from rag.store import database as db
from rag.store import lexical
from rag.store import queries
from rag.store.corpus_index import database_path
from rag.store.files import load_array
from rag.store.maintenance import compaction_lock, writer_lock
from rag.store.segments import MERGE_PREFIX, build_segment, publish, remove_segment, segments_root

log = logging.getLogger(__name__)

MERGE_FACTOR = 10
DEAD_FRACTION = 0.25


def plan(segments: dict[str, int], dead: dict[str, int]) -> list[str]:
    """Names of the segments to merge now (empty: nothing to do)."""
    heavy = [name for name, count in segments.items() if dead.get(name, 0) and dead[name] >= DEAD_FRACTION * count]
    tiers: dict[int, list[str]] = {}
    for name, count in segments.items():
        live = count - dead.get(name, 0)
        tiers.setdefault(int(math.log(max(live, 1), MERGE_FACTOR)), []).append(name)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= MERGE_FACTOR:
            return sorted(set(tiers[tier]) | set(heavy))
    return sorted(heavy)


def _state(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    with db.transaction(conn, "DEFERRED"):
        segments = queries.segment_sizes(conn)
        dead = queries.tombstones_by_segment(conn)
    return segments, {k: np.array(sorted(v), dtype=np.int64) for k, v in dead.items()}


def due(index_dir: Path) -> bool:
    path = database_path(index_dir)
    if not path.exists():
        return False
    conn = db.connect(path)
    try:
        segments, dead = _state(conn)
    finally:
        conn.close()
    return bool(plan(segments, {k: len(v) for k, v in dead.items()}))


def compact(index_dir: Path, settings: Settings, before_commit: Callable[[], None] | None = None) -> bool:
    """One merge step if the policy asks for one; False when there was nothing to do or another
    compaction is running.  ``before_commit`` is a test hook (the merged segment is built)."""
    index_dir = Path(index_dir)
    with compaction_lock(index_dir) as mine:
        if not mine or not database_path(index_dir).exists():
            return False
        conn = db.connect(database_path(index_dir))
        try:
            return _compact(index_dir, conn, settings, before_commit)
        finally:
            conn.close()


def compact_all(index_dir: Path, settings: Settings) -> int:
    """Merge until the policy is satisfied (``rag index`` leaves a compacted index); steps run."""
    steps = 0
    while compact(index_dir, settings):
        steps += 1
    return steps


def _compact(index_dir: Path, conn: sqlite3.Connection, settings: Settings, before_commit) -> bool:
    started = time.perf_counter()
    segments, dead = _state(conn)
    chosen = plan(segments, {k: len(v) for k, v in dead.items()})
    if not chosen:
        return False
    ids_parts, vector_parts, purged = [], [], []
    for name in chosen:
        folder = segments_root(index_dir) / name
        ids = load_array(folder / "ids.npy")
        vectors = load_array(folder / "vectors.npy", mmap_mode="r")
        keep = ~np.isin(ids, dead.get(name, np.zeros(0, dtype=np.int64)))
        ids_parts.append(ids[keep])
        vector_parts.append(np.asarray(vectors[keep]))
        purged.extend(ids[~keep].tolist())
    ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    merged = None
    if len(ids):
        vectors = np.concatenate(vector_parts)[order]
        merged = build_segment(index_dir, ids, vectors, settings, prefix=MERGE_PREFIX)
    if before_commit is not None:
        before_commit()
    with writer_lock(index_dir):
        # Purged rows leave SQLite for good: BM25 must have seen their deletion first (a
        # writer killed before its lexical sync would otherwise leave them in tantivy).
        lexical.sync(index_dir, conn)
        with db.transaction(conn):
            version = db.version_of(conn) + 1
            new_name = publish(merged) if merged is not None else None
            db.purge_passages(conn, purged)
            db.merge_segments(conn, chosen, new_name, len(ids), version)
            db.set_meta(conn, version=version)
            if lexical.recorded_version(conn) == version - 1:
                lexical.record_unchanged(conn, version)  # a merge changes no passage's text
        for old in chosen:
            remove_segment(index_dir, old)
    log.info("compaction merged %d segments into %s (%d rows, %d purged) in %.2f s", len(chosen), new_name, len(ids), len(purged),
             time.perf_counter() - started)
    return True
