"""POST /v1/ask:batch and POST /v1/search:batch: many questions in one request.

For bulk use and evaluation: the whole batch costs one encoder call and one batched reader
call, which on 2 CPU cores answers several times more questions per second than one request
per question (eval/BENCHMARKS.md).  A batch holds at most MAX_BATCH questions (422 beyond), so
one request cannot hold a worker for long; every question is validated as in the single
endpoints, and a bad one fails the whole batch with 422 naming its position.
"""
from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from rag.api.deps import PipelineDep
from rag.api.schemas import AskResponse, Mode, SearchResponse
from rag.errors import InvalidRequest
from rag.retrieval import RetrievalParams
from rag.types import passage_to_dict

# 64 questions take ~1-3 s to answer on 2 cores: long enough for a bulk call, short enough not
# to starve the other requests of the worker pool.
MAX_BATCH = 64

router = APIRouter(prefix="/v1", tags=["questions"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskBatchRequest(_Strict):
    questions: list[str] = Field(..., min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} questions.")
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None


class SearchBatchRequest(_Strict):
    queries: list[str] = Field(..., min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} queries.")
    top_k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None


class AskBatchResponse(BaseModel):
    results: list[AskResponse] = Field(description="One answer object per question, in request order.")


class SearchBatchResponse(BaseModel):
    results: list[SearchResponse] = Field(description="One result per query, in request order.")


def _validated(pipeline, texts: list[str], what: str) -> list[str]:
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(pipeline.validate_question(text))
        except InvalidRequest as exc:
            raise InvalidRequest(f"{what}[{i}]: {exc}") from exc
    return out


@router.post("/ask:batch", response_model=AskBatchResponse, summary=f"Answer up to {MAX_BATCH} questions in one call")
def ask_batch(body: AskBatchRequest, pipeline: PipelineDep) -> dict:
    questions = _validated(pipeline, body.questions, "questions")
    results = pipeline.ask_batch(questions, top_k=body.top_k, mode=body.mode)
    return {"results": [r.to_dict() for r in results]}


@router.post("/search:batch", response_model=SearchBatchResponse, summary=f"Retrieve passages for up to {MAX_BATCH} queries")
def search_batch(body: SearchBatchRequest, pipeline: PipelineDep) -> dict:
    queries = _validated(pipeline, body.queries, "queries")
    params = RetrievalParams.from_settings(pipeline.settings, body.mode, body.top_k)
    started = time.perf_counter()
    found = pipeline.retriever.search_batch(pipeline.index, queries, params)
    per_query = (time.perf_counter() - started) * 1000 / len(queries)
    return {
        "results": [
            {"query": query, "passages": [passage_to_dict(p) for p in passages], "timings_ms": {"retrieve": round(per_query, 2)}}
            for query, passages in zip(body.queries, found, strict=True)
        ]
    }
