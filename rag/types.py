"""Dataclasses that flow between the pipeline stages.

ingest -> Document; chunking -> Paragraph, Passage; retrieval -> RetrievedPassage;
reading -> AnswerSpan; pipeline -> Answer / QAResult.  Every offset is a character offset
into the text it names, end-exclusive, so ``text[start:end]`` is always the quoted string.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source document as read from disk (or uploaded)."""

    document_id: str
    text: str  # the source file's text (decoded file for .txt/.md, extracted text for .html/.pdf)
    source_path: str = ""
    title: str = ""
    author: str = ""
    publisher: str = ""
    source_url: str = ""
    content_hash: str = ""

    def metadata(self) -> dict[str, str]:
        data = asdict(self)
        data.pop("text")
        return data


@dataclass(frozen=True)
class Paragraph:
    document_id: str
    paragraph_index: int
    text: str
    doc_start: int  # Document.text[doc_start:doc_end] == text
    doc_end: int
    section: str = ""


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


@dataclass
class Answer:
    text: str
    score: float
    context: str
    citation: Citation
    # Other paragraphs that quote the same answer text (``citation`` is the best of them).
    supporting: list[Citation] = field(default_factory=list)


@dataclass
class NoAnswer:
    reason: str  # for tools and logs; no numbers (they are in the fields below)
    best_score: float | None = None
    threshold: float | None = None
    message: str = ""  # for people: plain language, e.g. "The documents don't say."


@dataclass
class QAResult:
    question: str
    answers: list[Answer]
    passages: list[RetrievedPassage]
    timings_ms: dict[str, float]
    no_answer: NoAnswer | None = None

    def to_dict(self) -> dict[str, Any]:
        """The response shape shared by ``POST /v1/ask`` and ``rag ask --json``."""
        return {
            "question": self.question,
            "answers": [asdict(a) for a in self.answers],
            "passages": [passage_to_dict(p) for p in self.passages],
            "no_answer": asdict(self.no_answer) if self.no_answer else None,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


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
        "score": retrieved.score,
        "scores": asdict(retrieved.scores),
    }
