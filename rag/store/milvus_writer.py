"""The write side of the Milvus index: ``IndexBuilder.apply``'s semantics as upserts and deletes.

An upload, replace or delete touches that document's rows only, by primary key: its head row
(one read by key) lists the passage ids and record keys of its current version, new rows are
upserted, the old version's rows deleted by those keys, and the version marker (a property of
the passages collection) is bumped once per apply together with the live counts.  Nothing is
read or rewritten per corpus, so a write costs the document (eval/BENCHMARKS.md, "Writes on
Milvus Lite").

Order per changed document, so that readers (rag/store/milvus_index.py) never see a passage
without its paragraph or a document head without its text:

1. its text and paragraph parts (keys carry the new ``gen``; the old ones stay);
2. its passages (new ids; ids of an unchanged ordinal and gen are the same rows);
3. its head, which now names the new ``gen`` (the commit point for document reads);
4. deletes of the old version's passages and parts, by primary key.

A deleted document loses its head first, then its passages and parts.  A process killed
between steps leaves the old version intact (steps 1-2 add rows under new keys); rows it added
are not named by any head, so they stay until a rebuild unless the same content is written
again (same keys, overwritten).  One writer per process at a time (a lock); writers in several
replicas write different documents independently, two concurrent writes of one document end as
the last one to write its head, and their count updates may overwrite each other (`rag index`
recounts from the heads).

A change of embedding model or chunking rebuilds: every document is re-embedded into a new
pair of collections, and the alias moves to them in one call.  The previous pair stays until
the next rebuild, so replicas still on it finish their requests.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from rag import __version__
from rag.embedding import Encoder
from rag.errors import InvalidRequest
from rag.settings import Settings
from rag.store import milvus_records as rec
from rag.store.lexical import Tokenizer, passage_text
from rag.store.milvus_lexical import TermCounts
from rag.store.milvus_index import MilvusIndex, client_for, ensure_loaded, read_state, scan
from rag.store.milvus_store import (FORMAT_VERSION, HEAD, MAX_KEY, PROP_MANIFEST, PROP_RECORDS, PROP_VERSION, WRITE_BATCH, keys_filter, passages_schema, quote,
                                    records_name, records_schema)
from rag.store.prepare import Prepared, chunk, chunking_params, embed_passages, reusable
from rag.store.protocol import Index, IndexReport, StoredDocument, check_overwrite
from rag.types import Document

log = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
# Salts tried when a passage id collides with another document's (odds ~5*10^-5 at 10^6 passages).
MAX_SALTS = 8
# Keys per delete expression: a 3,000-paragraph document's keys would make one ~200 KB filter.
KEYS_PER_DELETE = 500
# Documents written per round of upserts: bounds the rows held at once in a bulk build.
DOCUMENTS_PER_ROUND = 256
# Seal Milvus' growing segments once this many passages were written since the last seal:
# searches scan growing segments without their index.  Milvus Lite, 1,000 passages: BM25 p50
# 93 -> 15 ms and dense 45 -> 8 ms after the seal, which took 0.7 s (load average ~6.6 on 2 cores).
FLUSH_EVERY = 1000


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class MilvusWriter:
    """The Milvus backend's ``IndexWriter`` (rag/store/protocol.py): ``apply`` as IndexBuilder's;
    documents are chunked and embedded by the same functions (rag/store/prepare.py)."""

    def __init__(self, settings: Settings, encoder: Encoder):
        self.settings = settings
        self.encoder = encoder
        self._counts = TermCounts()

    def apply(self, index_dir: Path, upserts: Iterable[Document] = (), deletes: Iterable[str] = (), origin: str = "file",
              sync_roots: Iterable[Path] | None = None, previous: Index | None = None,
              refuse_overwrite: Collection[str] = ()) -> tuple[Index, IndexReport]:
        """``previous`` is not needed: a MilvusIndex holds nothing open to reuse.  ``index_dir``
        places Milvus Lite's database when no URI is set, as for the settings' own folder.
        ``refuse_overwrite`` is checked against the documents' head rows read just before the
        write, under this process's writer lock; Milvus has no lock across replicas, so a
        replica writing the same id at that moment is not seen (see the module docstring)."""
        if Path(index_dir) != Path(self.settings.index_dir):
            other = self.settings.model_copy(update={"index_dir": Path(index_dir)})
            return MilvusWriter(other, self.encoder).apply(index_dir, upserts, deletes, origin, sync_roots,
                                                          refuse_overwrite=refuse_overwrite)
        started = time.perf_counter()
        upserts, deletes = list(upserts), list(deletes)
        for document in upserts:
            if len(document.document_id.encode("utf-8")) > MAX_KEY - 64 or any(ord(c) < 32 for c in document.document_id):
                raise InvalidRequest(f"document id {document.document_id[:80]!r} is too long or has a control character")
        report = IndexReport()
        client = client_for(self.settings)
        alias = self.settings.milvus_collection
        with _lock(f"{id(client)}/{alias}"):
            self._counts = TermCounts()  # this write's change to the BM25 statistics
            state = read_state(client, alias)
            meta = json.loads(state[1][PROP_MANIFEST]) if state is not None and PROP_MANIFEST in state[1] else {}
            if state is not None and meta:
                ensure_loaded(client, state[0], state[1][PROP_RECORDS])
            if state is None or not reusable(meta, self.encoder, self.settings, FORMAT_VERSION):
                if meta:
                    log.warning("model or chunking changed since the last build: re-embedding every document")
                carried = [] if state is None else self._all_documents(client, state)
                olds = {s.document.document_id: s.document for s in carried}
                for document in upserts:
                    if document.document_id in refuse_overwrite and (old := olds.get(document.document_id)) is not None:
                        check_overwrite(document, old.title, old.source_path)
                self._rebuild(client, alias, state, meta, carried, upserts, deletes, origin, report)
            else:
                self._write_changes(client, state, meta, upserts, deletes, origin, sync_roots, report, refuse_overwrite)
        index = MilvusIndex.load(self.settings)
        report.version, report.documents, report.passages = index.version, len(index.documents), len(index)
        report.seconds = time.perf_counter() - started
        return index, report

    # ------------------------------------------------------------------------- incremental
    def _write_changes(self, client, state, meta: dict, upserts: list[Document], deletes: list[str], origin: str, sync_roots,
               report: IndexReport, refuse_overwrite: Collection[str] = ()) -> None:
        name, properties = state
        records = properties[PROP_RECORDS]
        wanted = {d.document_id: StoredDocument(d, origin) for d in upserts}
        heads = {h["document_id"]: h for h in self._heads(client, records, None if sync_roots is not None else [*wanted, *deletes])}
        for document in upserts:  # the heads just read: nothing is written or embedded before this check
            if document.document_id in refuse_overwrite and (head := heads.get(document.document_id)) is not None:
                check_overwrite(document, rec.info_from(head).get("title", ""), head["source_path"])
        if sync_roots is not None:
            roots = [Path(r).resolve() for r in sync_roots]
            for doc_id, head in heads.items():
                path = Path(head["source_path"]).resolve() if head["source_path"] else None
                in_scope = path is not None and any(path == r or path.is_relative_to(r) for r in roots)
                if head["origin"] == "file" and doc_id not in wanted and in_scope:
                    deletes.append(doc_id)
        removed = [d for d in dict.fromkeys(deletes) if d in heads and d not in wanted]
        todo = []
        for doc_id, stored in wanted.items():
            old = heads.get(doc_id)
            if old is not None and old["origin"] == stored.origin and old["content_hash"] == stored.document.content_hash:
                report.unchanged.append(doc_id)
                continue
            (report.added if old is None else report.updated).append(doc_id)
            todo.append(stored)
        report.removed.extend(removed)
        if not todo and not removed:
            return
        for doc_id in removed:
            client.delete(records, filter=keys_filter([rec.head_key(doc_id)]))
            self._remove_rows(client, name, records, heads[doc_id], keep_gen=None)
        written = self._store(client, name, records, todo, report, replaced=heads)
        emptied = {s.document.document_id for s in todo} - set(written)
        for doc_id in emptied & set(heads):  # now empty: its old version goes
            client.delete(records, filter=keys_filter([rec.head_key(doc_id)]))
            self._remove_rows(client, name, records, heads[doc_id], keep_gen=None)
        # Live counts kept in the manifest: Milvus Lite's count(*) scans (0.37 s per count at 10^4
        # passages, which made a one-document write cost ~0.4 s).  `rag index` (sync_roots) has
        # every head and sets them exactly; other writes add what they changed.
        gone = [heads[d] for d in [*removed, *written, *emptied] if d in heads]
        if sync_roots is not None:
            kept = [h for d, h in heads.items() if d not in written and d not in emptied and d not in removed]
            counts = (len(kept) + len(written), sum(int(h["passages"]) for h in kept) + sum(written.values()))
        else:
            counts = (int(meta.get("live_documents", 0)) + len(written) - len(gone),
                      int(meta.get("live_passages", 0)) + sum(written.values()) - sum(int(h["passages"]) for h in gone))
        meta = {**meta, "live_documents": max(0, counts[0]), "live_passages": max(0, counts[1]),
                "lexical_tokens": max(0, int(meta.get("lexical_tokens", 0)) + self._counts.tokens)}
        self._counts.save(client, records, WRITE_BATCH)
        self._commit(client, name, properties, meta, report.embedded_passages)

    def _store(self, client, name: str, records: str, todo: list[StoredDocument], report: IndexReport,
               replaced: Mapping[str, dict]) -> dict[str, int]:
        """Chunk, embed and write ``todo``; {document id: passages} of those stored (not the empty ones).
        ``replaced``: documents that had a version before, whose other rows are then deleted."""
        items = []
        for stored in sorted(todo, key=lambda s: s.document.document_id):
            item = chunk(stored, self.settings)
            if item is None:
                log.warning("document %s has no indexable text; skipped", stored.document.document_id)
                report.skipped.append((stored.document.document_id, "no indexable text"))
            else:
                items.append(item)
        passages = [p for item in items for p in item.passages]
        report.embedded_passages = len(passages)
        vectors = embed_passages(self.encoder, passages, self.settings.embedding_batch_size)
        tokenizer = Tokenizer()
        at = 0
        for start in range(0, len(items), DOCUMENTS_PER_ROUND):
            batch = items[start : start + DOCUMENTS_PER_ROUND]
            count = sum(len(item.passages) for item in batch)
            self._store_batch(client, name, records, batch, vectors[at : at + count], tokenizer, replaced)
            at += count
        return {item.stored.document.document_id: len(item.passages) for item in items}

    def _store_batch(self, client, name: str, records: str, items: list[Prepared], vectors, tokenizer, replaced: Mapping[str, dict]) -> None:
        parts, heads, rows = [], [], []
        ids = self._ids(client, name, items)
        i = 0
        for item, item_ids in zip(items, ids, strict=True):
            gen = rec.gen_of(item.stored.document)
            head, item_parts, layout = rec.document_rows(item.stored, item.paragraphs, item_ids)
            parts.extend(item_parts)
            heads.append(head)
            lexical = tokenizer([passage_text(p) for p in item.passages])
            for passage, pid, terms in zip(item.passages, item_ids, lexical, strict=True):
                rows.append(rec.passage_row(replace(passage, passage_id=pid), gen, " ".join(terms), vectors[i],
                                            layout[passage.paragraph_index]))
                self._counts.add(rows[-1]["lexical"])
                i += 1
        _batched(client.upsert, records, parts)
        _batched(client.upsert, name, rows)
        _batched(client.upsert, records, heads)
        for item, item_ids in zip(items, ids, strict=True):
            doc_id = item.stored.document.document_id
            if doc_id in replaced:
                self._remove_rows(client, name, records, replaced[doc_id], keep_gen=rec.gen_of(item.stored.document), keep_ids=set(item_ids))

    def _ids(self, client, name: str, items: list[Prepared]) -> list[list[int]]:
        """Passage ids per document: hashed, re-salted when one is taken by another document
        (in Milvus or in this batch).  One read for the whole batch."""
        out: list[list[int]] = []
        owners: dict[int, str] = {}
        for salt in range(MAX_SALTS):
            wanted = [(item, rec.gen_of(item.stored.document)) for item in items[len(out):]]
            drafts = [[rec.passage_id(item.stored.document.document_id, gen, n, salt) for n in range(len(item.passages))]
                      for item, gen in wanted]
            flat = [pid for draft in drafts for pid in draft]
            taken = {int(r["id"]): (r["document_id"], r["gen"]) for chunk in range(0, len(flat), WRITE_BATCH)
                     for r in client.get(name, ids=flat[chunk : chunk + WRITE_BATCH], output_fields=["id", "document_id", "gen"])}
            for (item, gen), draft in zip(wanted, drafts, strict=True):
                owner = (item.stored.document.document_id, gen)
                free = len(set(draft)) == len(draft) and all(taken.get(pid, owner) == owner and pid not in owners for pid in draft)
                if not free:
                    break  # this document and the ones after it try the next salt
                out.append(draft)
                owners.update(dict.fromkeys(draft, owner[0]))
            if len(out) == len(items):
                return out
        raise RuntimeError(f"no free passage ids after {MAX_SALTS} salts")

    def _remove_rows(self, client, name: str, records: str, head: dict, keep_gen: str | None, keep_ids: Collection[int] = frozenset()) -> None:
        """Delete the passages and parts of the document version ``head`` names, except those the
        new version shares with it (same ids; same parts when the content, so ``gen``, is unchanged)."""
        members = rec.members_of(head)
        if members is None:  # a head too large to list its rows: find them by document id
            where = f"document_id == {quote(head['document_id'])}"
            ids = [int(r["id"]) for r in client.query(name, filter=where, output_fields=["id"])]
            stale = f"{where} and kind != {quote(HEAD)}" + (f" and gen != {quote(keep_gen)}" if keep_gen is not None else "")
            keys = [r["key"] for r in client.query(records, filter=stale, output_fields=["key"])]
        else:
            ids, text_keys, paragraph_keys = members
            keys = [] if head["gen"] == keep_gen else [*text_keys, *paragraph_keys]
        old = [i for i in ids if i not in keep_ids]
        # Their terms leave the BM25 statistics; so do those of rows the new version rewrote
        # under the same ids (same gen: same tokens), which were counted again when stored.
        counted = old + ([i for i in ids if i in keep_ids] if head["gen"] == keep_gen else [])
        for start in range(0, len(counted), WRITE_BATCH):
            for row in client.get(name, ids=counted[start : start + WRITE_BATCH], output_fields=["lexical"]):
                self._counts.add(row["lexical"], -1)
        for start in range(0, len(old), WRITE_BATCH):
            client.delete(name, ids=old[start : start + WRITE_BATCH])
        for start in range(0, len(keys), KEYS_PER_DELETE):
            client.delete(records, filter=keys_filter(keys[start : start + KEYS_PER_DELETE]))

    def _commit(self, client, name: str, properties: dict, meta: dict, written: int) -> None:
        """Bump the version marker (replicas poll it) and the manifest's timestamps; seal the
        growing segments when ``FLUSH_EVERY`` passages have been written since the last seal."""
        unsealed = int(meta.get("unsealed_passages", 0)) + written
        if unsealed >= FLUSH_EVERY:
            client.flush(name)
            client.flush(properties.get(PROP_RECORDS) or records_name(name))
            unsealed = 0
        version = int(properties.get(PROP_VERSION, 0)) + 1
        meta = {**meta, "version": version, "updated_at": _now(), "unsealed_passages": unsealed}
        client.alter_collection_properties(name, properties={PROP_MANIFEST: json.dumps(meta), PROP_VERSION: str(version)})

    # ------------------------------------------------------------------------- rebuild
    def _rebuild(self, client, alias: str, state, meta: dict, carried: list[StoredDocument], upserts: list[Document],
                 deletes: list[str], origin: str, report: IndexReport) -> None:
        wanted = {s.document.document_id: s for s in carried}
        for doc_id in deletes:
            if wanted.pop(doc_id, None) is not None:
                report.removed.append(doc_id)
        for document in upserts:
            (report.updated if document.document_id in wanted else report.added).append(document.document_id)
            wanted[document.document_id] = StoredDocument(document, origin)
        name = f"{alias}_{os.urandom(6).hex()}"
        records = records_name(name)
        for collection, (schema, index_params) in ((name, passages_schema(client, int(self.encoder.dimension), self.settings.milvus_index_type)),
                                                   (records, records_schema(client))):
            # Indexes created without waiting: create_collection(index_params=...) polls each
            # index every 0.5 s (4 s of a 5.6 s first build of the default corpus on Milvus Lite).
            client.create_collection(collection, schema=schema, consistency_level="Strong")
            client.create_index(collection, index_params, sync=False)
            client.load_collection(collection)
        try:
            written = self._store(client, name, records, list(wanted.values()), report, replaced={})
            manifest = {"format_version": FORMAT_VERSION, "rag_version": __version__, "embedding_model": self.encoder.name,
                        "dimension": int(self.encoder.dimension), "normalized": True, "chunking": chunking_params(self.settings),
                        "index_type": self.settings.milvus_index_type, "created_at": _now(),
                        "live_documents": len(written), "live_passages": sum(written.values()), "lexical_tokens": self._counts.tokens}
            self._counts.save(client, records, WRITE_BATCH)
            self._commit(client, name, {PROP_VERSION: str(int(meta.get("version", 0)))}, manifest, report.embedded_passages)
            client.alter_collection_properties(name, properties={PROP_RECORDS: records})
        except BaseException:
            client.drop_collection(name)
            client.drop_collection(records)
            raise
        if state is None:
            client.create_alias(name, alias)
        else:
            client.alter_alias(name, alias)  # the atomic switch
        # Collections two rebuilds old: no replica has read them since the previous switch.
        keep = {name, records} | ({state[0], state[1].get(PROP_RECORDS, "")} if state is not None else set())
        for other in client.list_collections():
            if other.startswith(f"{alias}_") and other not in keep:
                client.drop_collection(other)

    def _heads(self, client, records: str, ids: list[str] | None) -> list[dict]:
        if ids is not None:
            keys = sorted({rec.head_key(d) for d in ids})
            return [row for start in range(0, len(keys), KEYS_PER_DELETE)
                    for row in client.query(records, filter=keys_filter(keys[start : start + KEYS_PER_DELETE]), output_fields=rec.WRITER_HEAD_FIELDS)]
        return scan(client, self.settings, records, f"kind == {quote(HEAD)}", rec.WRITER_HEAD_FIELDS)

    def _all_documents(self, client, state) -> list[StoredDocument]:
        """Every document of the current collections, for a rebuild (their texts are in Milvus)."""
        index = MilvusIndex.load(self.settings)
        out = []
        for doc_id in index.documents:
            detail = index.document_detail(doc_id)
            if detail is not None:
                out.append(detail[0])
        return out


def _batched(call, collection: str, rows: list[dict]) -> None:
    for start in range(0, len(rows), WRITE_BATCH):
        call(collection, rows[start : start + WRITE_BATCH])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
