"""Write documents into the index: chunk and embed what changed, commit it in one transaction.

A write costs what it changes (issue 13): the changed documents are chunked and embedded
(before the writer lock is taken: issue 20, item 8),
their vectors become one new segment (rag/store/segments.py), and one SQLite transaction
inserts their rows, tombstones the passages of replaced or deleted documents and registers the
segment; then the BM25 index (tantivy, rag/store/lexical.py) replays that commit.  Unchanged documents are never read, re-embedded or rewritten.

Crash safety: the segment is complete and fsynced before the transaction that names it
commits; a process killed before the commit leaves an unnamed segment folder (removed by the
next writer) and the previous commit intact.
"""
from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag import __version__
from rag.embedding import Encoder
from rag.errors import StorageFull
from rag.settings import Settings
from rag.store import database as db
from rag.store import lexical
from rag.store import queries
from rag.store.files import is_disk_full
from rag.store.corpus_index import FORMAT_VERSION, CorpusIndex, database_path, legacy_format
from rag.store.legacy import legacy_documents, remove_legacy, upgrade_format3
from rag.store.maintenance import LOCK_FILE, remove_orphans, writer_lock  # noqa: F401  (re-exported)
from rag.store.prepare import Prepared, chunk, chunking_params, embed_items, reusable
from rag.store.protocol import Index, IndexReport, StoredDocument, check_overwrite
from rag.store.segments import build_segment, publish, remove_segment
from rag.types import Document

__all__ = ["IndexBuilder", "IndexReport"]  # IndexReport: importers of rag.store.builder keep it
log = logging.getLogger(__name__)


def _numbered(item: Prepared, generation: int, first_id: int) -> Prepared:
    """``item`` as the commit's generation ``generation`` with passage ids from ``first_id``."""
    passages = [replace(p, passage_id=first_id + i) for i, p in enumerate(item.passages)]
    return Prepared(item.stored, generation, item.paragraphs, passages, item.vectors)


def _stored_versions(index_dir: Path, ids: list[str], usable: Callable[[dict], bool]) -> dict[str, tuple[str, str]]:
    """(origin, content hash) of the live documents with these ids, read without the writer
    lock (a guess: the writer checks again under the lock); empty when the stored vectors
    cannot be reused (no index, an old format, another model or chunking: all re-embedded)."""
    path = database_path(index_dir)
    if not ids or not path.exists() or legacy_format(index_dir):
        return {}
    conn = db.connect(path)
    try:
        meta = db.get_meta(conn)
        if not meta or not usable(meta):
            return {}
        found = {}
        for doc_id in set(ids):
            stored = queries.live_origin_and_hash(conn, doc_id)
            if stored is not None:
                found[doc_id] = stored
        return found
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def _refuse_overwrites(upserts: list[Document], ids: Collection[str], stored: Callable[[str], StoredDocument | None]) -> None:
    """DocumentConflict when an upsert in ``ids`` would replace a document from another source."""
    for document in upserts:
        if document.document_id in ids and (old := stored(document.document_id)) is not None:
            check_overwrite(document, old.document.title, old.document.source_path)


def _committed_document(conn: sqlite3.Connection, meta: dict) -> Callable[[str], StoredDocument | None]:
    version = int(meta.get("version", 0))
    return lambda doc_id: queries.visible_document(conn, version, doc_id) if meta else None


def _early_overwrite_check(index_dir: Path, upserts: list[Document], ids: Collection[str]) -> None:
    """``refuse_overwrite`` before chunking and embedding, read without the writer lock: a
    conflict with a committed version is refused at once, not after the embedding; the check
    under the lock decides (a document written meanwhile)."""
    path = database_path(index_dir)
    if not ids or not path.exists() or legacy_format(index_dir):
        return
    conn = db.connect(path)
    try:
        _refuse_overwrites(upserts, ids, _committed_document(conn, db.get_meta(conn)))
    finally:
        conn.close()


class IndexBuilder:
    """The index folder's ``IndexWriter`` (rag/store/protocol.py)."""

    def __init__(self, settings: Settings, encoder: Encoder):
        self.settings = settings
        self.encoder = encoder

    def apply(
        self,
        index_dir: Path,
        upserts: Iterable[Document] = (),
        deletes: Iterable[str] = (),
        origin: str = "file",
        sync_roots: Iterable[Path] | None = None,
        previous: Index | None = None,
        refuse_overwrite: Collection[str] = (),
    ) -> tuple[Index, IndexReport]:
        """Upsert and delete documents; with ``sync_roots``, also drop file documents that came
        from those folders and are no longer in ``upserts`` (a file deleted from the corpus);
        ``refuse_overwrite`` as rag/store/protocol.py says."""
        started = time.perf_counter()
        index_dir = Path(index_dir)
        upserts = list(upserts)
        report = IndexReport()
        _early_overwrite_check(index_dir, upserts, refuse_overwrite)
        # Chunk and embed before taking the writer lock (issue 20, item 8: a 512 KB upload held
        # it for 43.7 s and a one-line upload behind it waited 38.6 s); in the lock, work is
        # proportional to the commit: one segment of ready vectors, one transaction, BM25.
        prepared = self._prepare(index_dir, upserts, origin)
        with writer_lock(index_dir):
            carried: list[StoredDocument] = []
            if legacy_format(index_dir):
                carried = legacy_documents(index_dir)
                log.warning("upgrading the index at %s from format 2: re-embedding its %d documents once", index_dir, len(carried))
            conn = None
            try:
                try:
                    conn = db.create(database_path(index_dir))
                    remove_orphans(index_dir, conn)
                    upgrade_format3(conn)
                    meta = db.get_meta(conn)
                    # The committed state, under the lock: the check and the write are one step.
                    in_carried = {s.document.document_id: s for s in carried}  # a format 2 index's documents
                    _refuse_overwrites(upserts, refuse_overwrite, in_carried.get if carried else _committed_document(conn, meta))
                    rebuild = bool(meta) and not self._reusable(meta)
                    if rebuild:
                        log.warning("model or chunking changed since the last build: re-embedding every document")
                        carried = queries.live_stored_documents(conn)
                    version = self._write(index_dir, conn, meta, rebuild, carried, upserts, list(deletes), origin, sync_roots,
                                          report, prepared)
                except Exception as exc:
                    if is_disk_full(exc, index_dir):  # rolled back: nothing of this write is committed
                        log.error("disk full while writing the index at %s: %s", index_dir, exc)
                        raise StorageFull("the index cannot be written: the disk is full; nothing was changed and the "
                                          "previous version is still served, retry later") from exc
                    raise
                # SQLite has committed: the write is done.  BM25 is derived from it and follows
                # before the lock is released; when it cannot (a full disk: tantivy's files are
                # written after SQLite's), reads serve its last commit, and the next write or
                # the service's retry replays what it missed (rag/store/lexical.py).
                try:
                    lexical.sync(index_dir, conn)
                except Exception as exc:  # noqa: BLE001 - derived data; never fails a committed write
                    log.warning("BM25 of the index at %s is behind version %d (%s): searches use its last commit until it catches up",
                                index_dir, version, exc)
                if carried:
                    remove_legacy(index_dir)
            finally:
                if conn is not None:
                    conn.close()
            # The segments ``previous`` has open are reused when it is a snapshot of this folder.
            index = previous.reopen(encoder=self.encoder) if previous is not None and previous.folder == index_dir else \
                CorpusIndex.load(index_dir, settings=self.settings, repair_with=self.encoder)
        report.version = version
        report.documents = len(index.documents)
        report.passages = len(index)
        report.seconds = time.perf_counter() - started
        return index, report

    def _reusable(self, meta: dict) -> bool:
        return reusable(meta, self.encoder, self.settings, FORMAT_VERSION)

    def _prepare(self, index_dir: Path, upserts: list[Document], origin: str) -> dict[str, Prepared | None]:
        """Chunks and vectors, by document id, of the upserts that differ from what is stored now
        (None: no indexable text); made without the writer lock, numbered when committed."""
        stored = _stored_versions(index_dir, [d.document_id for d in upserts], self._reusable)
        todo = [d for d in upserts if stored.get(d.document_id) != (origin, d.content_hash)]
        prepared = {d.document_id: chunk(StoredDocument(d, origin), self.settings) for d in todo}
        self._embed_items([item for item in prepared.values() if item is not None])
        return prepared

    def _embed_items(self, items: list[Prepared]) -> None:
        embed_items(self.encoder, items, self.settings.embedding_batch_size)

    def _write(self, index_dir: Path, conn: sqlite3.Connection, meta: dict, rebuild: bool, carried: list[StoredDocument],
               upserts: list[Document], deletes: list[str], origin: str, sync_roots, report: IndexReport,
               prepared: dict[str, Prepared | None]) -> int:
        live = {} if rebuild else queries.live_documents(conn, ids=None if sync_roots is not None else
                                                         [d.document_id for d in upserts] + deletes)
        wanted: dict[str, StoredDocument] = {s.document.document_id: s for s in carried}
        wanted.update({d.document_id: StoredDocument(d, origin) for d in upserts})
        if sync_roots is not None:
            roots = [Path(r).resolve() for r in sync_roots]
            for doc_id, (_, stored_origin, source_path) in live.items():
                path = Path(source_path).resolve() if source_path else None
                in_scope = path is not None and any(path == r or path.is_relative_to(r) for r in roots)
                if stored_origin == "file" and doc_id not in wanted and in_scope:
                    deletes = [*deletes, doc_id]
        gone: list[int] = []  # generations whose rows are tombstoned by this write
        for doc_id in deletes:
            if doc_id in live and doc_id not in wanted:
                gone.append(live.pop(doc_id).generation)
                report.removed.append(doc_id)
        todo: list[StoredDocument] = []
        carried_ids = {s.document.document_id for s in carried} - {d.document_id for d in upserts}
        for doc_id, stored in wanted.items():
            old = live.get(doc_id)
            if old is None:
                (report.updated if doc_id in carried_ids else report.added).append(doc_id)
            elif old.origin == stored.origin and queries.content_hash_of(conn, old.generation) == stored.document.content_hash:
                report.unchanged.append(doc_id)
                continue
            else:
                report.updated.append(doc_id)
                gone.append(old.generation)
            todo.append(stored)
        if meta and not todo and not gone and not rebuild:
            return int(meta["version"])  # nothing changed: no new version

        next_generation = int(meta.get("next_generation", 0))
        next_passage = int(meta.get("next_passage_id", 0))
        new: list[Prepared] = []
        for stored in sorted(todo, key=lambda s: s.document.document_id):
            doc_id = stored.document.document_id
            item = prepared.get(doc_id)
            ready = doc_id in prepared and (item is None or (item.stored.origin == stored.origin and
                                                            item.stored.document.content_hash == stored.document.content_hash))
            if not ready:
                # Prepared as unchanged but another writer changed it meanwhile, or a document
                # carried by a rebuild or an upgrade: chunked here, embedded below.
                item = chunk(stored, self.settings)
            if item is None:
                log.warning("document %s has no indexable text; skipped", doc_id)
                report.skipped.append((doc_id, "no indexable text"))
                continue
            new.append(_numbered(item, next_generation, next_passage))
            next_generation += 1
            next_passage += len(item.passages)
        self._embed_items([item for item in new if item.vectors is None])
        passages = [p for item in new for p in item.passages]
        report.embedded_passages = len(passages)
        vectors = np.concatenate([item.vectors for item in new]) if new else np.zeros((0, self.encoder.dimension), dtype=np.float32)
        segment_dir = build_segment(index_dir, np.array([p.passage_id for p in passages], dtype=np.int64), vectors, self.settings) \
            if passages else None
        old_segments = queries.segment_names(conn) if rebuild else []
        try:
            with db.transaction(conn):
                version = int(meta.get("version", 0)) + 1
                if rebuild:
                    db.delete_corpus(conn)
                    lexical.invalidate(conn)  # every passage row is new: BM25 is rebuilt
                for generation in gone:
                    db.tombstone_generation(conn, generation, version)
                for item in new:
                    db.insert_document(conn, item.stored.document, item.stored.origin, item.generation, len(item.passages), version)
                    db.insert_paragraphs(conn, item.generation, item.paragraphs)
                if segment_dir is not None:
                    name = publish(segment_dir)
                    segment_dir = segment_dir.parent / name  # removed below if this transaction rolls back
                    by_generation = {item.generation: item for item in new}
                    for generation, item in by_generation.items():
                        db.insert_passages(conn, generation, name, version, item.passages)
                    db.register_segment(conn, name, len(passages), version)
                counts = queries.live_totals(conn) if rebuild or not meta else None
                live_docs = counts[0] if counts else int(meta["live_documents"]) + len(new) - len(gone)
                live_passages = counts[1] if counts else int(meta["live_passages"]) + len(passages) - queries.passages_of_generations(conn, gone)
                db.set_meta(conn, format_version=FORMAT_VERSION, rag_version=__version__, embedding_model=self.encoder.name,
                            dimension=int(self.encoder.dimension), normalized=True, chunking=chunking_params(self.settings),
                            created_at=meta.get("created_at") or _now(), updated_at=_now(), version=version,
                            next_generation=next_generation, next_passage_id=next_passage,
                            live_documents=live_docs, live_passages=live_passages)
        except BaseException:
            if segment_dir is not None:  # built (or published) for a commit that did not happen
                shutil.rmtree(segment_dir, ignore_errors=True)
            raise
        for name in old_segments:
            remove_segment(index_dir, name)
        return version


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
