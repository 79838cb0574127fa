"""The index contract: what every backend offers, in one file (issue 22, requirement 1).

Two backends implement it: the embedded index folder (``CorpusIndex`` read by SQLite, tantivy
and FAISS segments, written by ``IndexBuilder``) and the whole index in Milvus (``MilvusIndex``,
written by ``MilvusWriter``).  The pipeline, the retriever and the API see only ``Index`` and
``IndexWriter``; ``rag/store/factory.py`` is the one place that picks a backend, and
tests/test_index_contract.py runs one suite over both.

Modelled on Haystack's ``document_stores/types/protocol.py``: structural typing (``typing.
Protocol``), so a backend satisfies the contract by having the members below, with no base class
and no registration; mypy checks each backend where the factory returns it as an ``Index``.

Scores, the part of the contract a caller can compare across backends (requirement 9):

* lexical: BM25 as bm25s' ``method="lucene"`` computes it (k1=1.5, b=0.75; rag/store/lexical.py),
  over the terms of ``lexical.passage_text`` (title, heading path, context, text) with the
  corpus statistics of the whole index: a passage scores the same whether it came in with the
  first build or with a later upload;
* dense: the inner product of unit vectors (cosine), the query's against the passage's.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.errors import DocumentConflict
from rag.types import Document, Paragraph, Passage

if TYPE_CHECKING:
    from rag.embedding import Encoder


@dataclass(frozen=True)
class StoredDocument:
    """A document as the index keeps it."""

    document: Document
    origin: str  # "file" (from a scanned folder) or "upload" (from the API)


@dataclass
class IndexReport:
    """What one ``IndexWriter.apply`` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (document id, why)
    documents: int = 0
    passages: int = 0
    embedded_passages: int = 0
    seconds: float = 0.0
    version: int = 0  # the index version after the write (unchanged when nothing changed)


class Passages(Protocol):
    """The live passages: ``len``, lookup by id (KeyError when absent), iteration in id order
    (a scan of the whole index: tools and tests only)."""

    def __len__(self) -> int: ...

    def __getitem__(self, passage_id: int) -> Passage: ...

    def __iter__(self) -> Iterator[Passage]: ...


class LexicalSearch(Protocol):
    """BM25 over the index's passages (see the module docstring for the scores)."""

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids int64, scores float32) of the ``k`` best passages with a positive score,
        best first; ties by passage id."""
        ...

    def scores_of(self, query: str, ids: Iterable[int]) -> dict[int, float]:
        """{passage id: BM25 score} of these passages; a passage without a query term is absent."""
        ...


class DenseSearch(Protocol):
    """Inner-product search over the passages' unit vectors."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, passage ids), each (len(queries), <= k), best first; a missing hit has id -1."""
        ...

    def describe(self) -> dict:
        """The vector index's parameters, as the manifest reports them under "dense"."""
        ...


class Index(Protocol):
    """The index at one version: what a request reads.

    The embedded backend is a snapshot (every read sees this version even while writers
    commit); Milvus has no multi-row transactions, so its reads are live, and a replace may
    briefly show both versions of that one document (rag/store/milvus_index.py)."""

    # Read-only members (properties here, so that a backend's plain attribute of a narrower
    # type, a Path or its own Mapping class, satisfies them).
    @property
    def version(self) -> int:
        """The committed version this object was opened at."""
        ...

    @property
    def folder(self) -> Path | None:
        """The index folder; None when the index lives elsewhere (Milvus)."""
        ...

    @property
    def lexical_stale(self) -> bool:
        """BM25 serves an older commit than ``version`` (its sync failed; it is retried)."""
        ...

    @property
    def documents(self) -> Mapping[str, StoredDocument]:
        """By id: a lookup reads one document; iteration scans (tools)."""
        ...

    @property
    def passages(self) -> Passages: ...

    @property
    def lexical(self) -> LexicalSearch: ...

    @property
    def dense(self) -> DenseSearch: ...

    @property
    def manifest(self) -> dict[str, Any]:
        """Build parameters and counts: format_version, embedding_model, dimension, chunking,
        version, document_count, passage_count, "dense" and "lexical" descriptions."""
        ...

    def __len__(self) -> int:
        """Live passages."""
        ...

    def latest_version(self) -> int | None:
        """The latest committed version of the index this object was opened from (one cheap
        read); None when it cannot be read now (the caller keeps serving this version)."""
        ...

    def reopen(self, expected_model: str | None = None, encoder: Encoder | None = None) -> Index:
        """The latest committed version of this same index, reusing what this object holds open
        (the embedded backend's vector segments).  ``expected_model``: IndexIncompatible when
        the index was built with another; ``encoder``: recomputes damaged derived data."""
        ...

    def fetch(self, passage_ids: list[int]) -> dict[int, tuple[Passage, Paragraph]]:
        """The passages, each with its paragraph, by id; ids not in the index are absent."""
        ...

    def vectors_of(self, passage_ids: Iterable[int]) -> np.ndarray:
        """The stored vectors of these passages, one row each (zeros for an unknown id)."""
        ...

    @property
    def vectors(self) -> np.ndarray:
        """Every live vector in passage-id order (a scan: tests and tools)."""
        ...

    def paragraphs_of(self, document_id: str) -> list[Paragraph]:
        """The document's paragraphs in order; empty when there is no such document."""
        ...

    def document_infos(self, limit: int | None = None, after: str | None = None) -> list[dict]:
        """One page of document metadata (no texts) with origin, passages and characters,
        ordered by id: the documents whose id sorts after ``after``, at most ``limit``."""
        ...

    def passage_count(self, document_id: str) -> int:
        """The document's passages (0: no such document)."""
        ...

    def source_url(self, document_id: str) -> str:
        """The document's source_url metadata ("" when none)."""
        ...

    def largest_documents(self, limit: int) -> dict[str, int]:
        """{document id: characters} of the ``limit`` largest documents, largest first."""
        ...


class IndexWriter(Protocol):
    """Writes documents into one index: upserts, deletes and folder syncs, each ``apply`` one
    committed version (or none when nothing changed).  One writer at a time per index."""

    def apply(self, index_dir: Path, upserts: Iterable[Document] = (), deletes: Iterable[str] = (), origin: str = "file",
              sync_roots: Iterable[Path] | None = None, previous: Index | None = None,
              refuse_overwrite: Collection[str] = ()) -> tuple[Index, IndexReport]:
        """Store ``upserts`` (a document whose content and origin are unchanged is left as it is),
        remove ``deletes``, and with ``sync_roots`` also remove the "file" documents from those
        folders that are not among ``upserts`` (their files were deleted).  Returns the index at
        the new version and what was done.

        ``index_dir``: the index folder of ``settings`` (or another one); a backend that keeps
        the index elsewhere keeps only its local files there (Milvus Lite's database when no
        URI is set).  ``previous``: the object the caller serves now; what it holds open is
        reused when it is of this index (a backend with nothing to reuse ignores it).

        ``refuse_overwrite``: ids of ``upserts`` that may only replace a stored document from the
        same source (``check_overwrite``); otherwise DocumentConflict and nothing is written.
        Checked against the committed state while the writer holds its lock, so a concurrent
        writer cannot slip a document in between the check and the write (no index: no conflict)."""
        ...


def check_overwrite(new: Document, old_title: str, old_source_path: str) -> None:
    """The rule of ``refuse_overwrite``: DocumentConflict when ``new`` would replace a document
    from another file (compared by file name) or, for text given directly, with another title
    (``отчёт.txt`` and ``доклад.txt`` once both became "document")."""
    old_name = Path(old_source_path).name
    same_source = bool(new.source_path) and old_name == new.source_path
    same_title = not new.source_path and old_title == new.title
    if not (same_source or same_title):
        raise DocumentConflict(
            f"document {new.document_id!r} already exists (from {old_name or old_title or 'another upload'!r}); "
            "send replace=true to replace it, or choose another document_id"
        )
