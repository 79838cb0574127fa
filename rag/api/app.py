"""The FastAPI application: routers, start-up warm-up, and the error-to-status mapping."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager, nullcontext

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from rag import __version__
from rag.api import edge_errors, limits, observability, redirects, routes_batch, security
from rag.api import docs_offline, routes_chat, routes_documents, routes_health, routes_qa, routes_web
from rag.api.errors import public_detail, status_for
from rag.errors import RagError
from rag.extras import missing
from rag.pipeline import Pipeline
from rag.settings import Settings

log = logging.getLogger(__name__)



def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None, warm_up: bool = True) -> FastAPI:
    # The app factory, like the CLI, is where the environment is read (uvicorn --factory).
    settings = settings or Settings()
    pipeline = pipeline or Pipeline(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up:
            # Load models and index once, before the first request (readiness turns 200 after).
            await run_in_threadpool(pipeline.warm_up)
        async with mcp_running() if mcp_running else nullcontext():
            yield

    app = FastAPI(
        title="rag: extractive question answering with citations",
        version=__version__,
        description="Answers quoted verbatim from your documents, each cited to its exact paragraph and characters.",
        lifespan=lifespan,
        # Every route, including ones added later, goes through the API-key check
        # (rag/api/security.py decides from method and path what access a request needs).
        dependencies=[Depends(security.authorize)],
    )
    app.state.pipeline = pipeline
    app.state.settings = settings

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)  # the whole message, paths included, for the operator
        return JSONResponse(status_code=status, content={"detail": public_detail(exc)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for error in exc.errors():
            location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
            messages.append(f"{location}: {error.get('msg')}")
        return JSONResponse(status_code=422, content={"detail": "; ".join(messages)})

    app.include_router(routes_health.router)
    app.include_router(routes_qa.router)
    app.include_router(routes_batch.router)
    app.include_router(routes_documents.router)
    app.include_router(routes_chat.router)
    app.include_router(routes_web.router)
    # MCP over streamable HTTP at /mcp (rag/mcp_server.py) when the [mcp] extra is installed.
    mcp_running = None
    if not missing("mcp", ("mcp",)):
        from rag.mcp_server import mount_http

        mcp_running = mount_http(app, pipeline, settings)
    docs_offline.setup(app)  # /docs from packaged Swagger UI files, no CDN
    # Security, limits and observability (docs/security.md); observability last = outermost.
    redirects.setup(app)
    security.setup(app, settings)
    limits.setup(app, settings)
    observability.setup(app, settings)
    edge_errors.setup(app)  # a full disk: 503 + Retry-After
    return app

