"""Documents into what both index writers store: paragraphs, passages and their vectors.

``IndexBuilder`` (the index folder) and ``MilvusWriter`` (Milvus) chunk, embed and decide
whether stored vectors are still usable by these same functions, so a document is cut and
encoded alike whichever backend keeps it, and segment repair (rag/store/recovery.py) re-embeds
with the same text.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.chunking import make_passages, split_paragraphs
from rag.embedding import Encoder
from rag.settings import Settings
from rag.store.protocol import StoredDocument
from rag.types import Paragraph, Passage

# The document title leads the encoder's text of passages this long or longer: it gives them
# their topic (real-documents gold set: recall@5 0.904 -> 0.921, MRR@5 0.762 -> 0.785) without
# letting a short passage (a byline, a one-line note) become "the title" and win every
# question about the document, as it did when every passage carried the title.
TITLE_MIN_WORDS = 25


@dataclass
class Prepared:
    """A document to store: its rows and, once embedded, one vector per passage."""

    stored: StoredDocument
    generation: int
    paragraphs: list[Paragraph]
    passages: list[Passage]
    vectors: np.ndarray | None = None


def chunking_params(settings: Settings) -> dict[str, Any]:
    """The chunking a stored index was cut with (its manifest's "chunking")."""
    return {"max_passage_words": settings.max_passage_words, "window_overlap_sentences": settings.window_overlap_sentences}


def reusable(meta: dict[str, Any], encoder: Encoder, settings: Settings, format_version: int) -> bool:
    """The stored vectors and passages of an index with manifest ``meta`` can be kept: same
    layout, embedding model and chunking.  Otherwise a writer re-embeds every document."""
    return bool(meta) and meta.get("format_version") == format_version and meta.get("embedding_model") == encoder.name \
        and int(meta.get("dimension", 0)) == int(encoder.dimension) and meta.get("chunking") == chunking_params(settings)


def chunk(stored: StoredDocument, settings: Settings, generation: int = 0, first_id: int = 0) -> Prepared | None:
    """The document's paragraphs and passages (None: no indexable text).  A document without a
    title gets its first section heading, or its id."""
    document = stored.document
    paragraphs = split_paragraphs(document, settings.max_passage_words)
    if not document.title:
        title = next((p.section for p in paragraphs if p.section), "") or document.document_id
        stored = StoredDocument(replace(document, title=title), stored.origin)
    passages = make_passages(paragraphs, settings.max_passage_words, settings.window_overlap_sentences,
                             first_passage_id=first_id, title=stored.document.title)
    if not passages:
        return None
    return Prepared(stored, generation, paragraphs, passages)


def embed_passages(encoder: Encoder, passages: list[Passage], batch_size: int) -> np.ndarray:
    """The passages' dense vectors, each encoded from its text with its context (``dense_text``)."""
    if not passages:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    return np.asarray(encoder.encode([dense_text(p) for p in passages], batch_size=batch_size), dtype=np.float32)


def embed_items(encoder: Encoder, items: list[Prepared], batch_size: int) -> None:
    """Embed these items' passages in one batch and give each item its rows."""
    vectors = embed_passages(encoder, [p for item in items for p in item.passages], batch_size)
    start = 0
    for item in items:
        item.vectors, start = vectors[start : start + len(item.passages)], start + len(item.passages)


def dense_text(passage: Passage) -> str:
    """What the encoder reads of a passage.  The heading path gives it the topic of short or
    pronoun-heavy paragraphs; a table run gets its header row."""
    title = passage.title if len(passage.text.split()) >= TITLE_MIN_WORDS else ""
    lead = ". ".join(part for part in (title, passage.section, passage.context) if part)
    return f"{lead}. {passage.text}" if lead else passage.text
