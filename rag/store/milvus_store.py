"""Milvus backend: the passage vectors of an index version live in a Milvus collection.

One code path for both deployments, chosen by the URI alone:

* a file path (``index/milvus.db``) runs Milvus Lite embedded in this process (pip package
  ``milvus-lite``): tests and single-machine use; one process per database file;
* ``http://host:19530`` (with ``RAG_MILVUS_TOKEN`` for authentication) reaches a Milvus
  standalone server or a distributed cluster shared by many API replicas (docs/deploy.md).

Each index version builds its own collection, ``<prefix>_<random>``; the version folder only
records its name (``dense/milvus.json``).  A reader therefore sees exactly the vectors of the
version it loaded, new versions never disturb queries on the old one, and the collection is
dropped when its version folder is cleaned up.  Row ``i`` has primary key ``i`` (the passage id).
The BM25 index stays in the version folder (bm25s), so hybrid search works unchanged.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from rag.store.base import VectorStore

log = logging.getLogger(__name__)

PARAMS_FILE = "milvus.json"
ID_FIELD = "id"
VECTOR_FIELD = "vector"
# Rows per insert call: ~1.5 MB of 384-dim vectors, well under Milvus' 64 MB message limit.
INSERT_BATCH = 1000
# Milvus caps limit (top-k) per search at 16,384.
MAX_TOP_K = 16384

_clients: dict[tuple[str, str], object] = {}
_clients_lock = threading.Lock()


def is_local(uri: str) -> bool:
    """A path (Milvus Lite) rather than a server address."""
    return "://" not in uri


def normalize_uri(uri: str) -> str:
    return str(Path(uri).expanduser().resolve()) if is_local(uri) else uri


def public_uri(uri: str) -> str:
    """The URI without user:password, for the manifest and logs."""
    if is_local(uri):
        return uri
    parts = urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def get_client(uri: str, token: str = ""):
    """One MilvusClient per (URI, token) per process: Milvus Lite allows one opener per file."""
    from pymilvus import MilvusClient

    uri = normalize_uri(uri)
    key = (uri, token)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if is_local(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            client = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
            _clients[key] = client
        return client


class MilvusStore(VectorStore):
    backend = "milvus"

    def __init__(self, uri: str, prefix: str = "rag_passages", token: str = "", index_type: str = "AUTOINDEX",
                 collection: str | None = None, dimension: int = 0, count: int = 0):
        self.uri = normalize_uri(uri)
        self.prefix = prefix
        self.token = token
        self.index_type = index_type
        self.collection = collection
        self.dimension = dimension
        self.count = count

    @property
    def client(self):
        return get_client(self.uri, self.token)

    # ------------------------------------------------------------------------- build
    def build(self, vectors: np.ndarray) -> None:
        from pymilvus import DataType

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        client = self.client
        name = f"{self.prefix}_{os.urandom(6).hex()}"
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=d)
        index_params = client.prepare_index_params()
        index_params.add_index(field_name=VECTOR_FIELD, index_type=self.index_type, metric_type="IP")
        client.create_collection(name, schema=schema, index_params=index_params, consistency_level="Strong")
        try:
            for start in range(0, n, INSERT_BATCH):
                rows = [{ID_FIELD: i, VECTOR_FIELD: vectors[i]} for i in range(start, min(n, start + INSERT_BATCH))]
                client.insert(name, rows)
            if n:
                client.flush(name)  # seal the segments so the index covers every row
        except BaseException:
            client.drop_collection(name)
            raise
        self.collection, self.dimension, self.count = name, d, n

    # ------------------------------------------------------------------------- query
    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``exclude``: rows never returned (a boolean filter evaluated inside Milvus)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        nq = len(queries)
        excluded = [] if exclude is None else [int(i) for i in exclude]
        k = min(k, self.count - len(excluded), MAX_TOP_K)
        if k <= 0 or self.collection is None:
            return np.zeros((nq, 0), dtype=np.float32), np.zeros((nq, 0), dtype=np.int64)
        hits = self.client.search(
            self.collection,
            data=list(queries),
            limit=k,
            output_fields=[ID_FIELD],
            search_params={"metric_type": "IP"},
            anns_field=VECTOR_FIELD,
            **({"filter": f"{ID_FIELD} not in {excluded}"} if excluded else {}),
        )
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        ids = np.full((nq, k), -1, dtype=np.int64)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col] = int(hit[ID_FIELD] if ID_FIELD in hit else hit["entity"][ID_FIELD])
                scores[row, col] = float(hit["distance"])
        return scores, ids

    # ------------------------------------------------------------------------- persistence
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PARAMS_FILE).write_text(json.dumps(self.describe(), indent=2))

    @classmethod
    def load(cls, folder: Path, uri: str | None = None, token: str = "") -> MilvusStore:
        """Reconnect to a version's collection; ``uri`` overrides the recorded address
        (replicas may reach the cluster by another name than the indexer did)."""
        saved = json.loads((folder / PARAMS_FILE).read_text())
        store = cls(uri or saved["uri"], saved.get("prefix", "rag_passages"), token, saved.get("index_type", "AUTOINDEX"),
                    saved["collection"], int(saved.get("dimension", 0)), int(saved.get("count", 0)))
        if store.count and not store.client.has_collection(store.collection):
            from rag.errors import IndexNotFound

            raise IndexNotFound(f"Milvus collection {store.collection!r} of this index version is missing at {public_uri(store.uri)}: rebuild with `rag index`")
        return store

    def drop(self) -> None:
        """Delete this version's collection (its version folder is being removed)."""
        if self.collection and self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)

    def __len__(self) -> int:
        return self.count

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "uri": public_uri(self.uri),
            "collection": self.collection,
            "prefix": self.prefix,
            "index_type": self.index_type,
            "metric": "inner_product",
            "dimension": self.dimension,
            "count": self.count,
        }
