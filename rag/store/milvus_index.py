"""The read side of an index held entirely in Milvus: the same interface as CorpusIndex.

A ``MilvusIndex`` holds no corpus data, only the manifest of the version it was opened at and
the names of its two collections (rag/store/milvus_store.py).  Every read goes to Milvus: a
query fetches only the passages it returns, a document page reads that document's rows, so
an API replica needs no index folder, no vectors.npy and no SQLite, and any number of replicas
share one Milvus.  ``latest_version()`` (one describe call, ~0.5 ms on Milvus Lite) tells the
Pipeline when another replica has written; it then reloads once per new version.

Reads are live, not snapshot-isolated: Milvus has no multi-row transactions.  The write order
(rag/store/milvus_writer.py) keeps every passage paired with its own paragraph and every
document with its own text; during a replace a search may briefly see the old and the new
passages of that one document.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import IndexIncompatible, IndexNotFound
from rag.settings import Settings
from rag.store.corpus_index import PassageLookup
from rag.store import milvus_records as rec
from rag.store.lexical import BM25_B, BM25_K1
from rag.store.milvus_lexical import MILVUS_RESCORE_FACTOR, LexicalView
from rag.store.milvus_store import (FORMAT_VERSION, HEAD, MAX_TOP_K, PROP_MANIFEST, PROP_RECORDS, PROP_VERSION, get_client, is_local,
                                    keys_filter, public_uri, quote)
from rag.store.protocol import StoredDocument
from rag.types import Document, Paragraph, Passage

if TYPE_CHECKING:
    from rag.embedding import Encoder

log = logging.getLogger(__name__)

# Rows per query_iterator page when listing (documents page, `rag index` sync).
PAGE = 1000
# Keys per read by primary key (bounds the filter expression: ~100 bytes per key).
KEYS_PER_READ = 500


def milvus_uri(settings: Settings) -> str:
    return settings.milvus_uri or str(settings.index_dir / "milvus.db")


def client_for(settings: Settings):
    return get_client(milvus_uri(settings), settings.milvus_token.get_secret_value())


def read_state(client, alias: str, check: bool = True) -> tuple[str, dict[str, str]] | None:
    """(physical passages collection, its properties) behind ``alias``; None when there is none.
    ``check=False`` (the per-request version check) skips the existence test: one call."""
    if check and not client.has_collection(alias):  # pymilvus logs an ERROR when describing a missing one
        return None
    described = client.describe_collection(alias)  # an alias resolves to its collection
    return described["collection_name"], described.get("properties", {})


def index_exists(settings: Settings) -> bool:
    """Some index is in the configured Milvus collection."""
    return read_state(client_for(settings), settings.milvus_collection) is not None


class MilvusIndex:
    """The index at one version: the Milvus backend's ``Index`` (rag/store/protocol.py)."""

    folder = None  # no index folder (metrics report none)
    lexical_stale = False  # BM25 is computed inside Milvus from the rows themselves: never behind

    def __init__(self, settings: Settings, client, name: str, properties: dict[str, str], counts: tuple[int, int]):
        self.settings = settings
        self.client = client
        self.alias = settings.milvus_collection
        self.name = name
        self.records = properties[PROP_RECORDS]
        self.meta: dict[str, Any] = json.loads(properties[PROP_MANIFEST])
        self.version = int(properties[PROP_VERSION])
        self.document_count, self.passage_count_total = counts
        self.documents = DocumentsView(self)
        self.passages = PassagesView(self)
        self.lexical = LexicalView(client, name, self.records, self.passage_count_total, int(self.meta.get("lexical_tokens", 0)))
        self.dense = DenseView(self)
        self._recent = threading.local()

    @classmethod
    def load(cls, settings: Settings, expected_model: str | None = None) -> MilvusIndex:
        client = client_for(settings)
        state = read_state(client, settings.milvus_collection)
        where = f"Milvus collection {settings.milvus_collection!r} at {public_uri(milvus_uri(settings))}"
        if state is None or PROP_MANIFEST not in state[1]:
            raise IndexNotFound(f"no index in {where}: run `rag index` first")
        name, properties = state
        meta = json.loads(properties[PROP_MANIFEST])
        if meta.get("format_version") != FORMAT_VERSION:
            raise IndexIncompatible(f"index in {where} has format version {meta.get('format_version')}, this rag reads "
                                    f"{FORMAT_VERSION}: rebuild it with `rag index`")
        if expected_model is not None and meta.get("embedding_model") != expected_model:
            raise IndexIncompatible(f"index in {where} was built with embedding model {meta.get('embedding_model')!r} but the "
                                    f"service is configured with {expected_model!r}: set RAG_EMBEDDING_MODEL to match or "
                                    "rebuild the index with `rag index`")
        ensure_loaded(client, name, properties[PROP_RECORDS])
        # Counts from the manifest (writers keep them): count(*) scans on Milvus Lite, 0.37 s at 10^4.
        return cls(settings, client, name, properties, (int(meta.get("live_documents", 0)), int(meta.get("live_passages", 0))))

    def latest_version(self) -> int | None:
        """The version the alias points at now (a rebuild moves it to another collection)."""
        try:
            state = read_state(self.client, self.alias, check=False)
        except Exception as exc:  # noqa: BLE001 - any client error (pymilvus has no common base): keep serving this version
            log.warning("cannot read the version of Milvus collection %r (%s: %s): serving version %d",
                        self.alias, type(exc).__name__, exc, self.version)
            return None
        return int(state[1].get(PROP_VERSION, 0)) if state is not None else None

    def reopen(self, expected_model: str | None = None, encoder: Encoder | None = None) -> MilvusIndex:
        """The alias's latest version (a MilvusIndex holds nothing open but the shared client)."""
        return MilvusIndex.load(self.settings, expected_model)

    @property
    def model(self) -> str:
        return self.meta["embedding_model"]

    @property
    def manifest(self) -> dict[str, Any]:
        dense = {"backend": "milvus", "uri": public_uri(milvus_uri(self.settings)), "collection": self.name,
                 "alias": self.alias, "records": self.records, "metric": "inner_product", "count": self.passage_count_total,
                 "index_type": self.meta.get("index_type", ""), "dimension": self.meta.get("dimension", 0)}
        lexical = {"backend": "milvus-bm25", "engine": "Milvus BM25 candidates, bm25s lucene re-scoring with whole-index statistics",
                   "ranking": f"bm25 lucene (k1={BM25_K1}, b={BM25_B})", "rescore_factor": MILVUS_RESCORE_FACTOR}
        return {**self.meta, "dense": dense, "lexical": lexical,
                "document_count": self.document_count, "passage_count": self.passage_count_total}

    def __len__(self) -> int:
        return self.passage_count_total

    # ----------------------------------------------------------------------- per query
    def fetch(self, passage_ids: list[int]) -> dict[int, tuple[Passage, Paragraph]]:
        """The passages (with their paragraphs) by id: two reads, whatever the corpus size."""
        if not passage_ids:
            return {}
        rows = self.client.get(self.name, ids=[int(i) for i in passage_ids], output_fields=rec.PASSAGE_FIELDS)
        keys = {k for r in rows for k in rec.paragraph_keys(r["document_id"], r["gen"], int(r["paragraph_index"]), int(r["paragraph_parts"]))}
        paragraphs = {g: rec.paragraph_from(d) for g, d in self._parts(sorted(keys)).items()}
        found = {}
        for row in rows:
            paragraph = paragraphs.get(rec.paragraph_group(row["document_id"], row["gen"], int(row["paragraph_index"])))
            if paragraph is not None:  # its document is being removed: left out, as a purged row is
                found[int(row["id"])] = (rec.passage_from(row, paragraph), paragraph)
        return found

    def _parts(self, keys: list[str], fields: list[str] = rec.PART_FIELDS) -> dict[str, str]:
        """{item: its JSON} from part rows read by primary key.  A filter on another field scans
        on Milvus Lite: ``grp in [...]`` took 1.5 s per query at 10^5 passages, keys take ms."""
        rows = [row for start in range(0, len(keys), KEYS_PER_READ)
                for row in self.client.query(self.records, filter=keys_filter(keys[start : start + KEYS_PER_READ]), output_fields=fields)]
        return rec.joined(rows)

    def vectors_of(self, passage_ids) -> np.ndarray:
        ids = [int(i) for i in passage_ids]
        out = np.zeros((len(ids), int(self.meta.get("dimension", 0))), dtype=np.float32)
        if ids:
            rows = {int(r["id"]): r["vector"] for r in self.client.get(self.name, ids=ids, output_fields=["id", "vector"])}
            for i, pid in enumerate(ids):
                if pid in rows:
                    out[i] = rows[pid]
        return out

    def head(self, document_id: str) -> dict[str, Any] | None:
        rows = self.client.query(self.records, filter=keys_filter([rec.head_key(document_id)]), output_fields=rec.WRITER_HEAD_FIELDS)
        return rows[0] if rows else None

    def paragraphs_of(self, document_id: str) -> list[Paragraph]:
        recent = getattr(self._recent, "detail", None)
        if recent is not None and recent[0] == document_id:
            # Pipeline.document_detail reads the document, then its passage count and
            # paragraphs: these come from the same read, so a replace in between cannot pair
            # one version's text with another's paragraphs.
            self._recent.detail = None
            return recent[1][2]
        head = self.head(document_id)
        if head is None:
            return []
        return self._paragraphs(head)

    def _rows_of(self, head: dict[str, Any], text: bool) -> list[dict[str, Any]]:
        """The paragraph part rows (and text part rows) of the version ``head`` names."""
        members = rec.members_of(head)
        if members is not None:
            keys = [*members[1], *members[2]] if text else members[2]
            return [row for start in range(0, len(keys), KEYS_PER_READ)
                    for row in self.client.query(self.records, filter=keys_filter(keys[start : start + KEYS_PER_READ]),
                                                 output_fields=["kind", *rec.PART_FIELDS])]
        # A head too large to list its keys (thousands of paragraphs): a filtered scan.
        kinds = "" if text else ' and kind == "para"'
        return self.client.query(self.records, filter=f"document_id == {quote(head['document_id'])} and gen == {quote(head['gen'])}{kinds}",
                                 output_fields=["kind", *rec.PART_FIELDS])

    def _paragraphs(self, head: dict[str, Any]) -> list[Paragraph]:
        rows = [r for r in self._rows_of(head, text=False) if r["kind"] == "para"]
        return sorted((rec.paragraph_from(d) for d in rec.joined(rows).values()), key=lambda p: p.paragraph_index)

    def document_detail(self, document_id: str) -> tuple[StoredDocument, int, list[Paragraph]] | None:
        """A document, its passage count and paragraphs, all of the version its head names."""
        head = self.head(document_id)
        if head is None:
            return None
        rows = self._rows_of(head, text=True)
        text = rec.joined([r for r in rows if r["kind"] == "text"])
        paragraphs = sorted((rec.paragraph_from(d) for d in rec.joined([r for r in rows if r["kind"] == "para"]).values()),
                            key=lambda p: p.paragraph_index)
        if len(text) != 1:
            return None  # removed between the two reads
        document = Document.from_row(json.loads(next(iter(text.values()))))
        return StoredDocument(document, head["origin"]), int(head["passages"]), paragraphs

    def heads(self, output_fields: list[str] | None = None) -> list[dict[str, Any]]:
        """Every document head (a scan: listing and `rag index` sync only)."""
        return scan(self.client, self.settings, self.records, f"kind == {quote(HEAD)}", output_fields or rec.HEAD_FIELDS)

    def document_infos(self, limit: int | None = None, after: str | None = None) -> list[dict]:
        """One page by id, as CorpusIndex gives it; Milvus has no ordered scan, so a page reads every head."""
        infos = sorted((rec.info_from(h) for h in self.heads()), key=lambda i: i["document_id"])
        if after is not None:
            infos = [i for i in infos if i["document_id"] > after]
        return infos if limit is None else infos[:limit]

    def passage_count(self, document_id: str) -> int:
        recent = getattr(self._recent, "detail", None)
        if recent is not None and recent[0] == document_id:
            return recent[1][1]
        head = self.head(document_id)
        return int(head["passages"]) if head else 0

    def source_url(self, document_id: str) -> str:
        head = self.head(document_id)
        return json.loads(head["data"]).get("source_url", "") if head else ""

    def largest_documents(self, limit: int) -> dict[str, int]:
        """{document id: characters} of the ``limit`` largest, by the heads' size vectors."""
        if not self.document_count:
            return {}
        # No filter on kind: only heads have a non-zero size vector, so they come first (a
        # filter on a non-key field scans on Milvus Lite).
        hits = self.client.search(self.records, data=[[1.0, 0.0]], anns_field="size", limit=min(limit, MAX_TOP_K),
                                  output_fields=["kind", "document_id", "characters"], search_params={"metric_type": "IP"})[0]
        rows = sorted(((h["entity"]["document_id"], int(h["entity"]["characters"])) for h in hits if h["entity"]["kind"] == HEAD),
                      key=lambda r: (-r[1], r[0]))
        return dict(rows)

    @property
    def vectors(self) -> np.ndarray:
        return self.vectors_of([p.passage_id for p in self.passages])



def scan(client, settings: Settings, collection: str, where: str, fields: list[str]) -> list[dict[str, Any]]:
    """Every row matching ``where``.  A server pages with query_iterator (a plain query is capped
    at 16,384 rows there); Milvus Lite has no such cap but no iterator support either (its
    server answers AllocTimestamp with "not implemented" and logs a traceback per call)."""
    if is_local(milvus_uri(settings)):
        return list(client.query(collection, filter=where, output_fields=fields))
    iterator = client.query_iterator(collection, batch_size=PAGE, filter=where, output_fields=fields)
    rows: list[dict[str, Any]] = []
    try:
        while batch := iterator.next():
            rows.extend(batch)
    finally:
        iterator.close()
    return rows


def ensure_loaded(client, *collections: str) -> None:
    """Load collections into memory: Milvus Lite releases them when the process that opened the
    file exits (a server keeps them loaded), and a released collection refuses every query."""
    from pymilvus.client.types import LoadState

    for name in collections:
        if client.get_load_state(name)["state"] != LoadState.Loaded:
            client.load_collection(name)


class DocumentsView(Mapping[str, StoredDocument]):
    """Documents by id: ``get`` reads one document's rows; iteration scans (tools only)."""

    def __init__(self, index: MilvusIndex):
        self._index = index

    def __getitem__(self, document_id: str) -> StoredDocument:
        detail = self._index.document_detail(document_id)
        if detail is None:
            raise KeyError(document_id)
        self._index._recent.detail = (document_id, detail)  # this thread's next paragraphs_of reuses it
        return detail[0]

    def __contains__(self, document_id: object) -> bool:
        return isinstance(document_id, str) and self._index.head(document_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(h["document_id"] for h in self._index.heads(["key", "document_id"])))

    def __len__(self) -> int:
        return self._index.document_count


class PassagesView(PassageLookup):
    """Live passages: ``len``, iteration in id order (a scan, tools and tests), lookup by id."""

    def __iter__(self) -> Iterator[Passage]:
        index = self._index
        ids = sorted(int(r["id"]) for r in scan(index.client, index.settings, index.name, "id >= 0", ["id"]))
        for start in range(0, len(ids), PAGE):
            found = index.fetch(ids[start : start + PAGE])
            yield from (found[i][0] for i in ids[start : start + PAGE] if i in found)


class DenseView:
    """Inner-product search over the passages' vectors inside Milvus."""

    def __init__(self, index: MilvusIndex):
        self._index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        nq, k = len(queries), min(k, len(self._index), MAX_TOP_K)
        if k <= 0:
            return np.zeros((nq, 0), dtype=np.float32), np.zeros((nq, 0), dtype=np.int64)
        hits = self._index.client.search(self._index.name, data=list(queries), limit=k, anns_field="vector", output_fields=["id"],
                                         search_params={"metric_type": "IP"})
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        ids = np.full((nq, k), -1, dtype=np.int64)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col], scores[row, col] = int(hit["id"]), float(hit["distance"])
        return scores, ids

    def describe(self) -> dict:
        return self._index.manifest["dense"]
