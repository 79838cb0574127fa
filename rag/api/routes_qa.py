"""POST /v1/ask and POST /v1/search."""
from __future__ import annotations

from fastapi import APIRouter, Request

from rag.api.budget import SEARCH_COST, charge, question_cost
from rag.api.deps import PipelineDep
from rag.api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse, ask_response, search_response

router = APIRouter(prefix="/v1", tags=["questions"])


@router.post("/ask", response_model=AskResponse, summary="Answer a question with cited, verbatim spans")
def ask(body: AskRequest, pipeline: PipelineDep, request: Request) -> dict:
    charge(request, question_cost(pipeline.settings))
    return ask_response(pipeline.ask(body.question, top_k=body.top_k, mode=body.mode))


@router.post("/search", response_model=SearchResponse, summary="Retrieve passages only")
def search(body: SearchRequest, pipeline: PipelineDep, request: Request) -> SearchResponse:
    charge(request, SEARCH_COST)
    return search_response(body.query, pipeline.search(body.query, top_k=body.top_k, mode=body.mode))
