"""POST /v1/ask:batch and POST /v1/search:batch: many questions in one request.

For bulk use and evaluation: the whole batch costs one encoder call and one batched reader
call, which on 2 CPU cores answers several times more questions per second than one request
per question (eval/BENCHMARKS.md).  A batch holds at most MAX_BATCH questions (422 beyond; the
schema's bound) and at most ``RAG_MAX_BATCH_QUESTIONS`` questions of ``RAG_MAX_BATCH_CHARS``
characters together (413), so one request cannot hold a worker for long; each question is
charged to the client's work budget (rag/api/budget.py, 429).  Every question is validated as
in the single endpoints, and a bad one fails the whole batch with 422 naming its position.
"""
from __future__ import annotations


from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from rag.api.budget import SEARCH_COST, charge, question_cost
from rag.api.deps import PipelineDep
from rag.api.schemas import AskResponse, Mode, SearchResponse, Text, ask_response, search_response
from rag.errors import InvalidRequest, PayloadTooLarge

# 64 questions take ~1-3 s to answer on 2 cores: long enough for a bulk call, short enough not
# to starve the other requests of the worker pool.
MAX_BATCH = 64

router = APIRouter(prefix="/v1", tags=["questions"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskBatchRequest(_Strict):
    questions: list[Text] = Field(..., min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} questions.")
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None


class SearchBatchRequest(_Strict):
    queries: list[Text] = Field(..., min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} queries.")
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None


class AskBatchResponse(BaseModel):
    results: list[AskResponse] = Field(description="One answer object per question, in request order.")


class SearchBatchResponse(BaseModel):
    results: list[SearchResponse] = Field(description="One result per query, in request order.")


def _validated(pipeline, texts: list[str], what: str) -> list[str]:
    settings = pipeline.settings
    if len(texts) > settings.max_batch_questions:
        raise PayloadTooLarge(f"{len(texts)} {what} in one request, more than {settings.max_batch_questions} (RAG_MAX_BATCH_QUESTIONS)")
    characters = sum(len(t) for t in texts)
    if characters > settings.max_batch_chars:
        raise PayloadTooLarge(f"the {what} have {characters} characters together, more than {settings.max_batch_chars} (RAG_MAX_BATCH_CHARS)")
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(pipeline.validate_question(text))
        except InvalidRequest as exc:
            raise InvalidRequest(f"{what}[{i}]: {exc}") from exc
    return out


@router.post("/ask:batch", response_model=AskBatchResponse, summary=f"Answer up to {MAX_BATCH} questions in one call")
def ask_batch(body: AskBatchRequest, pipeline: PipelineDep, request: Request) -> dict:
    questions = _validated(pipeline, body.questions, "questions")
    charge(request, len(questions) * question_cost(pipeline.settings))
    results = pipeline.ask_batch(questions, top_k=body.top_k, mode=body.mode)
    return {"results": [ask_response(r) for r in results]}


@router.post("/search:batch", response_model=SearchBatchResponse, summary=f"Retrieve passages for up to {MAX_BATCH} queries")
def search_batch(body: SearchBatchRequest, pipeline: PipelineDep, request: Request) -> dict:
    queries = _validated(pipeline, body.queries, "queries")
    charge(request, len(queries) * SEARCH_COST)
    found = pipeline.search_batch(queries, top_k=body.top_k, mode=body.mode)  # reports its stage timing itself
    return {"results": [search_response(query, result, digits=2) for query, result in zip(body.queries, found, strict=True)]}
