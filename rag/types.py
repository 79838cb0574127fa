"""Dataclasses that flow between the pipeline stages.

ingest -> Document; chunking -> Paragraph, Passage; retrieval -> RetrievedPassage;
reading -> AnswerSpan; pipeline -> Answer / QAResult.  Every offset is a character offset
into the text it names, end-exclusive, so ``text[start:end]`` is always the quoted string.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rag.parsing.blocks import Block


@dataclass(frozen=True)
class Document:
    """One source document as read from disk (or uploaded)."""

    document_id: str
    text: str  # canonical text: what a reader sees (markup removed, wraps joined); offsets refer to it
    source_path: str = ""
    title: str = ""
    author: str = ""
    publisher: str = ""
    source_url: str = ""
    content_hash: str = ""
    format: str = ""  # txt, md, html, pdf, docx, pptx ("" for text given directly)
    blocks: tuple[Block, ...] = ()  # typed blocks over ``text``, in reading order

    def metadata(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("text", "blocks")}

    def to_row(self) -> dict[str, Any]:
        row = self.metadata()
        row["text"] = self.text
        row["blocks"] = [b.to_dict() for b in self.blocks]
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Document:
        row = dict(row)
        row["blocks"] = tuple(Block.from_dict(b) for b in row.get("blocks", ()))
        return cls(**row)


@dataclass(frozen=True)
class Paragraph:
    document_id: str
    paragraph_index: int
    text: str
    doc_start: int  # Document.text[doc_start:doc_end] == text
    doc_end: int
    section: str = ""  # heading path, outermost first, joined by " > "
    kind: str = "paragraph"  # the block kind, or "group" for a run of short blocks
    source_start: int | None = None  # span in the source file (.txt, .md, .html)
    source_end: int | None = None
    pages: list[int] = field(default_factory=list)  # 1-based PDF pages / PPTX slides
    bboxes: list[list[float]] = field(default_factory=list)  # [page, x0, top, x1, bottom] in PDF points


@dataclass(frozen=True)
class Passage:
    """The unit that is embedded and retrieved: a paragraph, or a sentence window of a long one."""

    passage_id: int  # row in the vector and BM25 indexes
    document_id: str
    paragraph_index: int
    text: str
    paragraph_start: int  # Paragraph.text[paragraph_start:paragraph_start+len(text)] == text
    doc_start: int  # Document.text[doc_start:doc_start+len(text)] == text
    section: str = ""
    title: str = ""
    context: str = ""  # text the encoders see before ``text`` (a table's header row), never quoted

    @property
    def doc_end(self) -> int:
        return self.doc_start + len(self.text)


@dataclass
class PassageScores:
    bm25: float | None = None
    dense: float | None = None
    fused: float = 0.0


@dataclass
class RetrievedPassage:
    passage: Passage
    paragraph: Paragraph
    score: float
    scores: PassageScores = field(default_factory=PassageScores)
    rank: int = 0


@dataclass
class AnswerSpan:
    """A reader's answer: offsets into ``retrieved.paragraph.text``."""

    retrieved: RetrievedPassage
    start: int
    end: int
    score: float  # calibrated: roughly the probability that the span is a correct answer
    # The same answer text quoted from other paragraphs (their spans support this one).
    supporting: list[AnswerSpan] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.retrieved.paragraph.text[self.start : self.end]


@dataclass
class ReaderOutput:
    spans: list[AnswerSpan]  # best first
    no_answer_score: float = 0.0  # probability mass the reader gives to "no answer here"


@dataclass
class Citation:
    document_id: str
    title: str
    paragraph_index: int
    paragraph_text: str
    answer_start: int
    answer_end: int
    doc_start: int  # Document.text[doc_start:doc_end] == paragraph_text
    doc_end: int
    section: str = ""
    pages: list[int] = field(default_factory=list)  # PDF pages of the paragraph (empty for other formats)


@dataclass
class Answer:
    text: str
    score: float
    context: str
    citation: Citation
    # Other paragraphs that quote the same answer text (``citation`` is the best of them).
    supporting: list[Citation] = field(default_factory=list)
    # Where ``context`` lies in the cited paragraph: paragraph_text[context_start:context_end]
    # == context (Haystack's context offsets); the answer lies inside it.
    context_start: int = 0
    context_end: int = 0


@dataclass
class NoAnswer:
    reason: str  # for tools and logs; no numbers (they are in the fields below)
    best_score: float | None = None
    threshold: float | None = None
    message: str = ""  # for people: plain language, e.g. "The documents don't say."
    cause: str = ""  # for machines: a rag.abstention.Cause value ("no_passage", "no_candidate", "below_threshold")


@dataclass
class QAResult:
    question: str
    answers: list[Answer]
    passages: list[RetrievedPassage]
    timings_ms: dict[str, float]
    no_answer: NoAnswer | None = None


@dataclass
class SearchResult:
    """``Pipeline.search``'s result: the passages found and the stage timings (ms)."""

    passages: list[RetrievedPassage]
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class IndexStatus:
    """The live index at a glance (``Pipeline.status``)."""

    version: int
    passages: int
    lexical_stale: bool  # BM25 serves an older commit until its sync succeeds


def passage_to_dict(retrieved: RetrievedPassage) -> dict[str, Any]:
    p = retrieved.passage
    return {
        "document_id": p.document_id,
        "title": p.title,
        "paragraph_index": p.paragraph_index,
        "text": p.text,
        "paragraph_start": p.paragraph_start,
        "doc_start": p.doc_start,
        "doc_end": p.doc_end,
        "section": p.section,
        "pages": list(retrieved.paragraph.pages),
        "score": retrieved.score,
        "scores": asdict(retrieved.scores),
    }
