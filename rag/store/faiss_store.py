"""FAISS backend: exact inner product (IndexFlatIP) over normalised vectors = cosine similarity.

Exact search costs ~1 ms per 10^4 passages at 384 dimensions on one core, well inside the
latency budget for corpora up to ~10^5 passages.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from rag.store.base import VectorStore

INDEX_FILE = "faiss.index"


class FaissStore(VectorStore):
    backend = "faiss"

    def __init__(self, index: faiss.Index | None = None):
        self._index = index

    def build(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            index.add(vectors)
        self._index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self._index is None or self._index.ntotal == 0 or k <= 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        return self._index.search(queries, min(k, self._index.ntotal))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(folder / INDEX_FILE))

    @classmethod
    def load(cls, folder: Path) -> FaissStore:
        return cls(faiss.read_index(str(folder / INDEX_FILE)))

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def describe(self) -> dict:
        return {"backend": self.backend, "index": "IndexFlatIP", "metric": "inner_product"}
