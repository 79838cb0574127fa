"""Build or update the index: chunk, embed only what changed, write a new version atomically."""
from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag import __version__
from rag.chunking import make_passages, split_paragraphs
from rag.embedding import Encoder
from rag.errors import IndexIncompatible, IndexNotFound
from rag.settings import Settings
from rag.store.corpus_index import FORMAT_VERSION, CorpusIndex, StoredDocument
from rag.store.factory import make_vector_store
from rag.store.lexical import LexicalIndex
from rag.types import Document, Paragraph, Passage

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    embedded_passages: int = 0
    seconds: float = 0.0
    version: str = ""


@contextmanager
def writer_lock(index_dir: Path):
    """One writer at a time per index folder, across threads and processes (flock)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class IndexBuilder:
    def __init__(self, settings: Settings, encoder: Encoder):
        self.settings = settings
        self.encoder = encoder

    def chunking_params(self) -> dict:
        return {
            "max_passage_words": self.settings.max_passage_words,
            "window_overlap_sentences": self.settings.window_overlap_sentences,
        }

    def apply(
        self,
        index_dir: Path,
        upserts: Iterable[Document] = (),
        deletes: Iterable[str] = (),
        origin: str = "file",
        sync_roots: Iterable[Path] | None = None,
    ) -> tuple[CorpusIndex, IndexReport]:
        """Upsert and delete documents; with ``sync_roots``, also drop file documents that came
        from those folders and are no longer in ``upserts`` (a file deleted from the corpus)."""
        started = time.perf_counter()
        upserts = list(upserts)
        with writer_lock(index_dir):
            previous = self._load_previous(index_dir)
            report = IndexReport()
            documents = dict(previous.documents) if previous else {}
            wanted = {d.document_id for d in upserts}
            if sync_roots is not None:
                roots = [Path(r).resolve() for r in sync_roots]
                for doc_id, stored in list(documents.items()):
                    path = Path(stored.document.source_path).resolve() if stored.document.source_path else None
                    in_scope = path is not None and any(path == r or path.is_relative_to(r) for r in roots)
                    if stored.origin == "file" and doc_id not in wanted and in_scope:
                        deletes = [*deletes, doc_id]
            for doc_id in deletes:
                if documents.pop(doc_id, None) is not None:
                    report.removed.append(doc_id)
            for document in upserts:
                old = documents.get(document.document_id)
                if old is None:
                    report.added.append(document.document_id)
                elif old.document.content_hash == document.content_hash and old.origin == origin:
                    report.unchanged.append(document.document_id)
                    continue
                else:
                    report.updated.append(document.document_id)
                documents[document.document_id] = StoredDocument(document, origin)
            index = self._assemble(documents, previous, report)
            report.version = index.save(index_dir).name
        report.documents = len(index.documents)
        report.passages = len(index.passages)
        report.seconds = time.perf_counter() - started
        return index, report

    def _load_previous(self, index_dir: Path) -> CorpusIndex | None:
        try:
            return CorpusIndex.load(index_dir, mmap=True, settings=self.settings, with_dense=False)
        except IndexNotFound:
            return None
        except IndexIncompatible as exc:
            log.warning("%s; rebuilding from scratch", exc)
            return None

    def _reusable(self, previous: CorpusIndex | None) -> bool:
        return (
            previous is not None
            and previous.manifest.get("embedding_model") == self.encoder.name
            and previous.manifest.get("chunking") == self.chunking_params()
        )

    def _assemble(self, documents: dict[str, StoredDocument], previous: CorpusIndex | None, report: IndexReport) -> CorpusIndex:
        reuse = self._reusable(previous)
        if previous is not None and not reuse:
            log.warning("model or chunking changed since the last build: re-embedding every document")
        old_by_doc = previous.passages_by_document() if reuse else {}
        old_hashes = {k: v.document.content_hash for k, v in previous.documents.items()} if reuse else {}
        old_paragraphs: dict[str, list[Paragraph]] = {}
        if reuse:
            for (doc_id, _), paragraph in previous.paragraphs.items():
                old_paragraphs.setdefault(doc_id, []).append(paragraph)

        final_docs: dict[str, StoredDocument] = {}
        paragraphs: dict[tuple[str, int], Paragraph] = {}
        passages: list[Passage] = []
        rows: list[np.ndarray | None] = []  # reused vector per passage, None = embed
        for doc_id in sorted(documents):
            stored = documents[doc_id]
            document = stored.document
            if old_hashes.get(doc_id) == document.content_hash:
                stored = previous.documents[doc_id]
                doc_paragraphs = old_paragraphs.get(doc_id, [])
                for old in old_by_doc[doc_id]:
                    passages.append(replace(old, passage_id=len(passages)))
                    rows.append(previous.vectors[old.passage_id])
            else:
                doc_paragraphs = split_paragraphs(document, self.settings.max_passage_words)
                if not document.title:
                    title = next((p.section for p in doc_paragraphs if p.section), "") or doc_id
                    stored = StoredDocument(replace(document, title=title), stored.origin)
                new = make_passages(
                    doc_paragraphs,
                    self.settings.max_passage_words,
                    self.settings.window_overlap_sentences,
                    first_passage_id=len(passages),
                    title=stored.document.title,
                )
                if not new:
                    log.warning("document %s has no indexable text; skipped", doc_id)
                    report.skipped.append((doc_id, "no indexable text"))
                    continue
                passages.extend(new)
                rows.extend([None] * len(new))
            final_docs[doc_id] = stored
            paragraphs.update({(p.document_id, p.paragraph_index): p for p in doc_paragraphs})

        vectors = self._vectors(passages, rows, report)
        dense = make_vector_store(self.settings)
        dense.build(vectors)
        lexical = LexicalIndex()
        lexical.build([_lexical_text(p) for p in passages])
        passage_counts: dict[str, int] = {}
        for passage in passages:
            passage_counts[passage.document_id] = passage_counts.get(passage.document_id, 0) + 1
        manifest = {
            "format_version": FORMAT_VERSION,
            "rag_version": __version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "embedding_model": self.encoder.name,
            "dimension": int(vectors.shape[1]),
            "normalized": True,
            "chunking": self.chunking_params(),
            "dense": dense.describe(),
            "document_count": len(final_docs),
            "paragraph_count": len(paragraphs),
            "passage_count": len(passages),
            "documents": {
                doc_id: {"content_hash": s.document.content_hash, "origin": s.origin, "source_path": s.document.source_path,
                         "passages": passage_counts.get(doc_id, 0)}
                for doc_id, s in final_docs.items()
            },
        }
        return CorpusIndex(manifest, final_docs, paragraphs, passages, vectors, dense, lexical)

    def _vectors(self, passages: list[Passage], rows: list[np.ndarray | None], report: IndexReport) -> np.ndarray:
        todo = [i for i, row in enumerate(rows) if row is None]
        report.embedded_passages = len(todo)
        dimension = self.encoder.dimension
        vectors = np.zeros((len(passages), dimension), dtype=np.float32)
        if todo:
            vectors[todo] = self.encoder.encode(
                [_dense_text(passages[i]) for i in todo], batch_size=self.settings.embedding_batch_size
            )
        for i, row in enumerate(rows):
            if row is not None:
                vectors[i] = row
        return vectors


# The document title leads the encoder's text of passages this long or longer: it gives them
# their topic (real-documents gold set: recall@5 0.904 -> 0.921, MRR@5 0.762 -> 0.785) without
# letting a short passage (a byline, a one-line note) become "the title" and win every
# question about the document, as it did when every passage carried the title.
TITLE_MIN_WORDS = 25


def _dense_text(passage: Passage) -> str:
    # The heading path gives the encoder the topic of short or pronoun-heavy paragraphs; a
    # table run gets its header row.
    title = passage.title if len(passage.text.split()) >= TITLE_MIN_WORDS else ""
    lead = ". ".join(part for part in (title, passage.section, passage.context) if part)
    return f"{lead}. {passage.text}" if lead else passage.text


def _lexical_text(passage: Passage) -> str:
    return " ".join(part for part in (passage.title, passage.section, passage.context, passage.text) if part)
