"""Choose the vector store: ``vector_backend`` = "faiss" (embedded, default) or "milvus".

Building asks the settings; loading asks the manifest of the version being opened (its
``dense`` section names the backend that built it), with connection details and query-time
knobs from the settings where they are set.
"""
from __future__ import annotations

import logging
from pathlib import Path

from rag.settings import Settings
from rag.store.base import VectorStore
from rag.store.faiss_store import FaissConfig, FaissStore

log = logging.getLogger(__name__)

BACKENDS = ("faiss", "milvus")


def milvus_uri(settings: Settings) -> str:
    return settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")


def make_vector_store(settings: Settings) -> VectorStore:
    """An empty store of the configured backend, ready for ``build``."""
    if settings.vector_backend == "faiss":
        return FaissStore(FaissConfig.from_settings(settings))
    if settings.vector_backend == "milvus":
        from rag.store.milvus_store import MilvusStore

        return MilvusStore(milvus_uri(settings), settings.milvus_collection, settings.milvus_token.get_secret_value(), settings.milvus_index_type)
    raise ValueError(f"unknown vector backend {settings.vector_backend!r}; use one of {', '.join(BACKENDS)}")


def load_vector_store(folder: Path, description: dict, settings: Settings | None = None, mmap: bool = True) -> VectorStore:
    """Open the store saved in ``folder`` (a version's ``dense/``), described by the manifest."""
    backend = description.get("backend", "faiss")
    if backend == "faiss":
        if settings is None:
            return FaissStore.load(folder, mmap=mmap)
        return FaissStore.load(folder, settings.faiss_hnsw_ef_search, settings.faiss_ivf_nprobe, mmap=mmap)
    if backend == "milvus":
        from rag.store.milvus_store import MilvusStore

        uri = settings.milvus_uri if settings is not None and settings.milvus_uri else None
        token = settings.milvus_token.get_secret_value() if settings is not None else ""
        return MilvusStore.load(folder, uri=uri, token=token)
    raise ValueError(f"index built with unknown vector backend {backend!r}")


def drop_vector_store(folder: Path, description: dict, settings: Settings | None = None) -> None:
    """Free what a removed version held outside its folder (its Milvus collection)."""
    if description.get("backend") != "milvus":
        return
    try:
        store = load_vector_store(folder, description, settings)
        store.drop()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - cleanup must never fail a write
        log.warning("could not drop the Milvus collection of %s: %s", folder, exc)
