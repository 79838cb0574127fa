"""Liveness and readiness probes."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from rag.api.deps import PipelineDep
from rag.api.errors import NO_INDEX
from rag.api.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> dict:
    # On the event loop, not in the worker threads: it answers while every worker is busy
    # parsing, indexing or reading (a liveness probe must not time out under load).
    return {"status": "ok"}


@router.get("/readyz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def readyz(pipeline: PipelineDep):
    if pipeline.ready:
        # Ready means a search works, not just that files opened (issue 20, item 9).
        if pipeline.search_failure() is None:
            status = pipeline.status()
            behind = "; BM25 serves an older version until its sync succeeds" if status.lexical_stale else ""
            return {"status": "ready", "detail": f"{status.passages} passages{behind}"}
        return JSONResponse(status_code=503, content={"status": "not ready", "detail": "a search over the index fails (the server log says why)"})
    # /readyz is public: never the index folder's path (issue 20, item 13)
    detail = "models loading" if not pipeline.models_ready else NO_INDEX
    return JSONResponse(status_code=503, content={"status": "not ready", "detail": detail})
