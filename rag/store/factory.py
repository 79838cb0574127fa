"""Choose the index: ``vector_backend`` = "faiss" (embedded, default) or "milvus".

"faiss": the index folder (SQLite texts and BM25, FAISS vector segments; rag/store/corpus_index.py
and builder.py).  "milvus": the whole index in Milvus (rag/store/milvus_index.py and
milvus_writer.py), no index folder.  ``load_index``, ``make_writer``, ``has_index`` and the
compaction pair (``compaction_due``, ``compact``) are the one place the Pipeline and the server
ask which; both backends give the contract of rag/store/protocol.py, so nothing above this
module knows which one it has.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag.settings import Settings
from rag.store.protocol import Index, IndexWriter

if TYPE_CHECKING:
    from rag.embedding import Encoder


def load_index(settings: Settings, expected_model: str | None = None, previous: Index | None = None,
               encoder: Encoder | None = None) -> Index:
    """The latest version of the configured index, checked against ``expected_model``.
    ``previous``: a version this process loaded with these settings, whose open files are
    reused; ``encoder`` recomputes damaged derived data (rag/store/recovery.py)."""
    if settings.vector_backend == "milvus":
        from rag.store.milvus_index import MilvusIndex

        return MilvusIndex.load(settings, expected_model)  # holds nothing open to reuse
    if previous is not None and previous.folder == Path(settings.index_dir):
        return previous.reopen(expected_model, encoder)
    from rag.store.corpus_index import CorpusIndex

    return CorpusIndex.load(settings.index_dir, expected_model=expected_model, settings=settings, repair_with=encoder)


def make_writer(settings: Settings, encoder: Encoder) -> IndexWriter:
    """The writer of the configured index (``apply`` with uploads, deletes, replaces, sync)."""
    if settings.vector_backend == "milvus":
        from rag.store.milvus_writer import MilvusWriter

        return MilvusWriter(settings, encoder)
    from rag.store.builder import IndexBuilder

    return IndexBuilder(settings, encoder)


def latest_version(index: Index) -> int | None:
    """The latest committed version of the index ``index`` was opened from (one cheap read);
    None when it cannot be read now."""
    return index.latest_version()


def has_index(settings: Settings) -> bool:
    """Some index exists where the settings point (``rag serve`` builds one when not)."""
    if settings.vector_backend == "milvus":
        from rag.store.milvus_index import index_exists as in_milvus

        return in_milvus(settings)
    from rag.store.corpus_index import index_exists

    return index_exists(settings.index_dir)


def compaction_due(settings: Settings) -> bool:
    """The index's segments want merging (the embedded index's policy, rag/store/compaction.py);
    always False for Milvus, which compacts its own segments."""
    if settings.vector_backend == "milvus":
        return False
    from rag.store import compaction

    return compaction.due(Path(settings.index_dir))


def compact(settings: Settings) -> int:
    """Merge segments until the policy is satisfied, in this thread; the merge steps run (0 for
    Milvus, and when another process is compacting)."""
    if settings.vector_backend == "milvus":
        return 0
    from rag.store import compaction

    return compaction.compact_all(Path(settings.index_dir), settings)
