"""The index's locks, and cleaning what killed writers and compactions left behind."""
from __future__ import annotations

import fcntl
import shutil
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from rag.store import queries
from rag.store.segments import MERGE_PREFIX, TEMP_PREFIX, remove_segment, segments_root

COMPACT_LOCK_FILE = ".compact.lock"
LOCK_FILE = ".lock"
_held = threading.local()  # index folders whose writer lock this thread holds


@contextmanager
def writer_lock(index_dir: Path):
    """One writer at a time per index folder, across threads and processes (flock).  Re-entrant
    within a thread: a writer that loads its new snapshot may find the lexical index to sync
    (rag/store/lexical.py) and must not wait for itself."""
    with _writer_lock(index_dir, blocking=True):
        yield


@contextmanager
def try_writer_lock(index_dir: Path):
    """Yields True holding the writer lock, False at once when another writer holds it: a
    reader that finds BM25 behind syncs only when no writer is busy (the writer syncs anyway
    before it releases the lock), so a read never waits for a write."""
    with _writer_lock(index_dir, blocking=False) as mine:
        yield mine


@contextmanager
def _writer_lock(index_dir: Path, blocking: bool):
    index_dir = Path(index_dir)
    key = str(index_dir.resolve())
    held = getattr(_held, "folders", None)
    if held is None:
        held = _held.folders = set()
    if key in held:
        yield True
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        held.add(key)
        try:
            yield True
        finally:
            held.discard(key)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def compaction_lock(index_dir: Path, blocking: bool = False):
    """Yields True when this process holds the compaction lock (flock), False when another does."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(index_dir) / COMPACT_LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def remove_orphans(index_dir: Path, conn: sqlite3.Connection) -> None:
    """Callers hold the writer lock.  Segment folders no commit names: a writer killed before its commit (``.tmp-*``, or a
    published ``s-*`` whose transaction never committed), a compaction killed mid-merge
    (``.merge-*``, only while no compaction runs) or after its commit (its old segments)."""
    root = segments_root(index_dir)
    if not root.is_dir():
        return
    registered = set(queries.segment_names(conn))
    merges = [p for p in root.iterdir() if p.name.startswith(MERGE_PREFIX)]
    if merges:
        with compaction_lock(index_dir) as free:
            if free:
                for path in merges:
                    shutil.rmtree(path, ignore_errors=True)
    for path in root.iterdir():
        if path.name.startswith(TEMP_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith("s-") and path.name not in registered:
            remove_segment(index_dir, path.name)
