"""Choose the index: ``vector_backend`` = "faiss" (embedded, default) or "milvus".

"faiss": the index folder (SQLite texts and BM25, FAISS vector segments; rag/store/corpus_index.py
and builder.py).  "milvus": the whole index in Milvus (rag/store/milvus_index.py and
milvus_writer.py), no index folder.  ``load_index``, ``make_writer`` and ``has_index`` are the
one place the Pipeline and the server ask which; the settings reach the store from here.
"""
from __future__ import annotations

import logging
from pathlib import Path

from typing import TYPE_CHECKING, cast

from rag.errors import IndexIncompatible
from rag.settings import Settings
from rag.store.base import VectorStore
from rag.store.faiss_store import FaissConfig, FaissStore

if TYPE_CHECKING:
    from rag.embedding import Encoder
    from rag.store.builder import IndexBuilder
    from rag.store.corpus_index import CorpusIndex

log = logging.getLogger(__name__)

BACKENDS = ("faiss", "milvus")


def load_index(settings: Settings, expected_model: str | None = None, previous: CorpusIndex | None = None,
               encoder: Encoder | None = None) -> CorpusIndex:
    """The latest version of the configured index, checked against ``expected_model``;
    ``encoder`` recomputes the vectors of a damaged segment (rag/store/recovery.py)."""
    if settings.vector_backend == "milvus":
        from rag.store.milvus_index import MilvusIndex

        # MilvusIndex offers CorpusIndex's read interface (views, fetch, search, manifest).
        return cast("CorpusIndex", MilvusIndex.load(settings, expected_model))
    from rag.store.corpus_index import CorpusIndex

    return CorpusIndex.load(settings.index_dir, expected_model=expected_model, settings=settings, previous=previous, repair_with=encoder)


def make_writer(settings: Settings, encoder: Encoder) -> IndexBuilder:
    """The writer of the configured index (``apply`` with uploads, deletes, replaces, sync)."""
    if settings.vector_backend == "milvus":
        from rag.store.milvus_writer import MilvusWriter

        return MilvusWriter(settings, encoder)
    from rag.store.builder import IndexBuilder

    return IndexBuilder(settings, encoder)


def latest_version(index: CorpusIndex) -> int | None:
    """The latest committed version of the index ``index`` was opened from (one indexed read
    or one Milvus describe call); None when it cannot be read now."""
    from rag.store.corpus_index import CorpusIndex
    from rag.store import database as db

    if isinstance(index, CorpusIndex):
        try:
            return db.version_of(index.conn)
        except db.sqlite3.Error:
            return None
    return index.latest_version()


def has_index(settings: Settings) -> bool:
    """Some index exists where the settings point (``rag serve`` builds one when not)."""
    if settings.vector_backend == "milvus":
        from rag.store.milvus_index import client_for, read_state

        return read_state(client_for(settings), settings.milvus_collection) is not None
    from rag.store.corpus_index import index_exists

    return index_exists(settings.index_dir)


def make_vector_store(settings: Settings) -> VectorStore:
    """An empty FAISS store for one segment of the index folder, ready for ``build``."""
    if settings.vector_backend in BACKENDS:
        # With "milvus" no segment is ever built (the Milvus index has no folder); a FAISS
        # store keeps tools that build a segment directly working.
        return FaissStore(FaissConfig.from_settings(settings))
    raise ValueError(f"unknown vector backend {settings.vector_backend!r}; use one of {', '.join(BACKENDS)}")


def load_vector_store(folder: Path, description: dict, settings: Settings | None = None, mmap: bool = True) -> VectorStore:
    """Open the store saved in ``folder`` (a version's ``dense/``), described by the manifest."""
    backend = description.get("backend", "faiss")
    if backend == "faiss":
        if settings is None:
            return FaissStore.load(folder, mmap=mmap)
        return FaissStore.load(folder, settings.faiss_hnsw_ef_search, settings.faiss_ivf_nprobe, mmap=mmap)
    if backend == "milvus":
        # Written by the per-segment Milvus design that the whole-index one replaced.
        raise IndexIncompatible("this index folder keeps its vectors in per-segment Milvus collections, which this rag no "
                                "longer reads: rebuild with RAG_VECTOR_BACKEND=milvus `rag index` (the whole index then "
                                "lives in Milvus) or delete the folder and rebuild with FAISS")
    raise ValueError(f"index built with unknown vector backend {backend!r}")


def drop_vector_store(folder: Path, description: dict, settings: Settings | None = None) -> None:
    """Free what a removed segment held outside its folder: nothing since segments are FAISS only."""
