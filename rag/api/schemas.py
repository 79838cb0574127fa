"""Pydantic models for every request and response body of the HTTP API."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from rag.settings import RetrievalMode
from rag.store.protocol import IndexReport
from rag.types import QAResult, RetrievedPassage, SearchResult, passage_to_dict

Mode = RetrievalMode


def well_formed(text: str) -> str:
    """``text`` unchanged, or ValueError (422) when it holds an unpaired surrogate such as
    ``"\\ud800"``: JSON can spell one, but it is not Unicode text, and answering with it failed
    with a 500 while encoding the response (issue 11)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"contains an unpaired surrogate (U+{ord(text[exc.start]):04X}) at character {exc.start}: not valid Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(well_formed)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskRequest(_Strict):
    question: Text = Field(..., min_length=1, description="A question in plain language.", examples=["Who was NATO's first Secretary General?"])
    top_k: int | None = Field(None, ge=1, le=100, description="Passages to return (the reader reads at least reader_top_k).")
    mode: Mode | None = Field(None, description="Retrieval mode; default hybrid.")


class SearchRequest(_Strict):
    query: Text = Field(..., min_length=1, examples=["NATO Secretary General"])
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None


# The response models read the pipeline's dataclasses (rag/types.py) directly: the dataclasses
# are the one source of the data, these models add the API schema (descriptions, validation).
_FROM_DATACLASSES = ConfigDict(from_attributes=True)


class CitationModel(BaseModel):
    model_config = _FROM_DATACLASSES

    document_id: str
    title: str
    paragraph_index: int
    paragraph_text: str
    answer_start: int = Field(description="paragraph_text[answer_start:answer_end] == answer text")
    answer_end: int
    doc_start: int = Field(description="document text[doc_start:doc_end] == paragraph_text")
    doc_end: int
    section: str = ""
    pages: list[int] = Field(default_factory=list, description="PDF pages of the paragraph (empty for other formats).")


class AnswerModel(BaseModel):
    model_config = _FROM_DATACLASSES

    text: str
    score: float
    context: str = Field(description="The sentence around the answer.")
    context_start: int = Field(0, description="citation.paragraph_text[context_start:context_end] == context")
    context_end: int = 0
    citation: CitationModel
    supporting: list[CitationModel] = Field(default_factory=list, description="Other paragraphs quoting the same answer text.")


class PassageScoresModel(BaseModel):
    model_config = _FROM_DATACLASSES

    bm25: float | None
    dense: float | None
    fused: float


class PassageModel(BaseModel):
    """A retrieved passage, flattened (passage fields, its paragraph's pages, the scores)."""

    document_id: str
    title: str
    paragraph_index: int
    text: str
    paragraph_start: int
    doc_start: int
    doc_end: int
    section: str
    pages: list[int] = Field(default_factory=list, description="PDF pages (PPTX slides) of the passage's paragraph.")
    score: float
    scores: PassageScoresModel

    @model_validator(mode="before")
    @classmethod
    def _from_retrieved(cls, data):
        return passage_to_dict(data) if isinstance(data, RetrievedPassage) else data


class NoAnswerModel(BaseModel):
    model_config = _FROM_DATACLASSES

    reason: str
    best_score: float | None = None
    threshold: float | None = None
    message: str = ""
    cause: str = Field("", description="Why, for programs: no_passage, no_candidate or below_threshold.")


class AskResponse(BaseModel):
    """Read from a ``QAResult`` (``AskResponse.model_validate(result)``): the shape of
    ``POST /v1/ask``, each result of ``/v1/ask:batch`` and ``rag ask --json``."""

    model_config = _FROM_DATACLASSES

    question: str
    answers: list[AnswerModel]
    passages: list[PassageModel]
    no_answer: NoAnswerModel | None = None
    timings_ms: dict[str, float]

    @field_validator("timings_ms")
    @classmethod
    def _rounded(cls, value: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 2) for k, v in value.items()}


def ask_response(result: QAResult) -> dict:
    """The JSON-ready answer to one question (API routes and the CLI share it)."""
    return AskResponse.model_validate(result).model_dump(mode="json")


# Read from a ``SearchResult`` and its query (``search_response``): the shape of ``POST /v1/search``
# and of each result of ``/v1/search:batch``.
class SearchResponse(BaseModel):
    query: str
    passages: list[PassageModel]
    timings_ms: dict[str, float]


def search_response(query: str, result: SearchResult, digits: int | None = None) -> SearchResponse:
    """The response to one query; ``digits``: timings rounded to that many decimals."""
    timings = result.timings_ms if digits is None else {k: round(v, digits) for k, v in result.timings_ms.items()}
    return SearchResponse.model_validate({"query": query, "passages": result.passages, "timings_ms": timings})


class DocumentIn(_Strict):
    text: Text = Field(..., min_length=1, description="Plain text; paragraphs separated by newlines.")
    document_id: Text | None = Field(None, min_length=1, max_length=200, description="Upsert key; default: slug of the title.")
    title: Text | None = Field(None, max_length=500)
    author: Text | None = Field(None, max_length=500)
    publisher: Text | None = Field(None, max_length=500)
    source_url: Text | None = Field(None, max_length=2000)
    replace: bool = Field(False, description="Replace a document of another title that has the id derived from this title (else 409).")


class DocumentInfo(BaseModel):
    document_id: str
    title: str
    author: str = ""
    publisher: str = ""
    source_url: str = ""
    source_path: str = Field("", description="The file's name (never a folder on the server); empty for text given directly.")
    content_hash: str
    format: str = Field("", description="txt, md, html, pdf, docx or pptx; empty for text given directly.")
    origin: str
    passages: int
    characters: int


class DocumentList(BaseModel):
    documents: list[DocumentInfo]
    next_after: str | None = Field(None, description="More documents follow: pass this as `after` for the next page")


class ParagraphModel(BaseModel):
    paragraph_index: int
    text: str
    doc_start: int = Field(description="text[doc_start:doc_end] == paragraph text, in the document's canonical text")
    doc_end: int
    section: str = Field("", description="Heading path, outermost first, joined by ' > '.")
    kind: str = Field("paragraph", description="Block kind (paragraph, list_item, table, code, quote, caption, footnote) or 'group'.")
    source_start: int | None = Field(None, description="Span in the original file's text (.txt, .md, .html).")
    source_end: int | None = None
    pages: list[int] = Field(default_factory=list, description="1-based PDF pages (PPTX slides).")
    bboxes: list[list[float]] = Field(default_factory=list, description="[page, x0, top, x1, bottom] in PDF points.")


class BlockModel(BaseModel):
    kind: str = Field(description="heading, paragraph, list_item, table, code, quote, caption or footnote")
    start: int = Field(description="text[start:end] is the block's text")
    end: int
    level: int = Field(0, description="Heading level (1 = top) or list nesting depth.")
    heading_path: list[str] = Field(default_factory=list)
    source_start: int | None = None
    source_end: int | None = None
    pages: list[int] = Field(default_factory=list)
    bboxes: list[list[float]] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list, description="Table cells, as shown.")


class DocumentDetail(DocumentInfo):
    """One page of a document: paragraphs ``[start, next_start)`` and the text they cover."""

    paragraph_count: int = Field(description="Paragraphs in the whole document.")
    start: int = Field(description="Index of the page's first paragraph.")
    next_start: int | None = Field(None, description="More paragraphs follow: pass this as `start` for the next page.")
    next: str | None = Field(None, description="The next page's path (relative), or null on the last page.")
    text_start: int = Field(description="Offset of `text` in the document's canonical text (0 on the first page).")
    text_end: int = Field(description="End of `text` in the canonical text; consecutive pages tile the text exactly.")
    text: str = Field(description="Canonical text from text_start to text_end: what a reader sees (markup removed, hard wraps joined); "
                      "every offset refers to the whole document's text. A document of one page has its whole text here.")
    blocks: list[BlockModel] = Field(default_factory=list, description="Typed blocks in reading order that overlap this page's text.")
    paragraphs: list[ParagraphModel]


# What an upload or a delete changed, read from the writer's report (``IndexChange.of``).
class IndexChange(BaseModel):
    # The version is a number (IndexReport.version), sent as a string as it always was.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    document_ids: list[str]
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    documents: int
    passages: int
    version: str

    @classmethod
    def of(cls, report: IndexReport, document_ids: list[str]) -> IndexChange:
        """The change ``report`` describes, for the documents the request named."""
        return cls.model_validate({**{name: getattr(report, name) for name in cls.model_fields if name != "document_ids"},
                                   "document_ids": document_ids})


class ErrorResponse(BaseModel):
    detail: str


class HealthResponse(BaseModel):
    status: str
    detail: str = ""
