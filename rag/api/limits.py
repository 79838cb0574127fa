"""Request limits: body size (413), per-client rate limit (429), CORS, and their OpenAPI entries.

Both middlewares are plain ASGI (no buffering, no BaseHTTPMiddleware):

* ``BodySizeLimit`` answers 413 before reading anything when Content-Length is over
  ``max_body_bytes``, and stops a chunked upload as soon as it passes the limit; it also
  answers 408 when the body stalls (``body_idle_timeout_s`` between chunks) or takes longer
  than ``body_total_timeout_s``, or, when its length is declared, longer than the idle timeout
  plus its length at ``MIN_BODY_BYTES_PER_S`` (slow clients holding a connection; headers and
  connection caps: server_options, connections);
* ``RateLimit`` counts requests to ``/v1/*`` per client address in a moving window (the
  ``limits`` library that slowapi wraps; in memory, so per process) and answers 429 with
  ``Retry-After``.  Health probes, /metrics, / and its static files are never limited; the
  document view (/documents/...) and /web/examples are.  The client
  address honours X-Forwarded-For only from ``RAG_TRUSTED_PROXIES`` (rag/api/budget.py),
  which also holds the per-client budget of work that the question routes charge.

Per-file upload size and files per request are checked where the upload is parsed
(routes_documents); question length in the pipeline (422); PDF page count in ingestion (413).
CORS is closed unless ``RAG_CORS_ORIGINS`` lists origins.
"""
from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from rag.api.asgi import send_json
from rag.api.budget import ClientAddress, WorkBudget
from rag.api.security import access_needed
from rag.errors import PayloadTooLarge  # noqa: F401 - raised by the body-size middleware, re-exported
from rag.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

# The document view and the examples read documents too (issue 20, item 5: neither was limited).
RATE_LIMITED_PREFIXES = ("/v1/", "/documents/", "/web/", "/mcp")
# The slowest upload rate a declared body may keep up (past the first idle timeout): 64 KiB/s.
MIN_BODY_BYTES_PER_S = 64 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class BodySizeLimit:
    def __init__(self, app, max_bytes: int, idle_timeout: float = 30.0, total_timeout: float = 300.0):
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.total_timeout = total_timeout

    def _message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes (RAG_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if int(declared) > self.max_bytes:
                await send_json(send, 413, {"detail": self._message()}, {"connection": "close"})
                return
        received = 0
        body_done = False
        # A declared body must also keep up a minimal rate: a 1 KB body sent a byte at a time
        # held its connection for the whole 300 s (issue 20, item 7); now ~30 s.
        allowed = self.total_timeout
        if declared is not None:
            allowed = min(allowed, self.idle_timeout + int(declared) / MIN_BODY_BYTES_PER_S)
        deadline = time.monotonic() + allowed

        async def limited_receive() -> dict:
            nonlocal received, body_done
            if body_done:  # after the body, receive() only waits for a disconnect: no timeout
                return await receive()
            wait = min(self.idle_timeout, deadline - time.monotonic())
            with anyio.move_on_after(max(wait, 0)) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                raise HTTPException(
                    status_code=408,
                    detail=f"the request body stalled or took too long (RAG_BODY_IDLE_TIMEOUT_S={self.idle_timeout:g}, "
                    f"RAG_BODY_TOTAL_TIMEOUT_S={self.total_timeout:g})",
                    headers={"Connection": "close"},
                )
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the body read: FastAPI's exception handling turns it into a
                    # JSON 413 like every other error.
                    raise HTTPException(status_code=413, detail=self._message())
            return message

        await self.app(scope, limited_receive, send)


class RateLimit:
    def __init__(self, app, spec: str, client_address: ClientAddress, prefixes: tuple[str, ...] = RATE_LIMITED_PREFIXES):
        from limits import parse_many
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.app = app
        self.items = parse_many(spec)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.prefixes = prefixes
        self.client_address = client_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and scope["path"].startswith(self.prefixes):
            client = self.client_address(scope)
            for item in self.items:
                if not self.limiter.hit(item, "client", client):
                    reset = self.limiter.get_window_stats(item, "client", client).reset_time
                    retry = max(1, math.ceil(reset - time.time()))
                    await send_json(
                        send,
                        429,
                        {"detail": f"rate limit exceeded: at most {item} per client (RAG_RATE_LIMIT); retry in {retry} s"},
                        {"retry-after": str(retry), "x-ratelimit-limit": str(item)},
                    )
                    return
        await self.app(scope, receive, send)


def setup(app: FastAPI, settings: Settings) -> None:
    """Install the limit middlewares and CORS.  The middleware added last runs first: CORS wraps
    the limits, so a browser can read their 413/429 answers."""
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, idle_timeout=settings.body_idle_timeout_s, total_timeout=settings.body_total_timeout_s
    )
    client_address = ClientAddress(settings.trusted_proxies)  # a bad entry fails at start
    app.state.client_address = client_address
    app.state.work_budget = WorkBudget(settings.work_budget, client_address) if settings.work_budget.strip() else None
    if settings.rate_limit.strip():
        from limits import parse_many

        try:
            parse_many(settings.rate_limit)  # fail at start, not on the first request
        except ValueError as exc:
            raise ValueError(f"RAG_RATE_LIMIT={settings.rate_limit!r} is not a rate like '300/minute': {exc}") from exc
        app.add_middleware(RateLimit, spec=settings.rate_limit, client_address=client_address)
    origins = list(settings.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Server-Timing", "Retry-After"],
            allow_credentials=False,
            max_age=600,
        )
    document_error_responses(app, settings)


# Errors are {"detail": "<message>"}; "detail" is not marked required because the
# OpenAI-compatible routes answer in OpenAI's {"error": {...}} shape instead.
_ERROR_SCHEMA = {"type": "object", "properties": {"detail": {"type": "string"}}}
_ERROR_CONTENT = {"application/json": {"schema": _ERROR_SCHEMA}}


def document_error_responses(app: FastAPI, settings: Settings) -> None:
    """Add the 401/403/413/422/429 answers to the OpenAPI schema, as the app really sends them.

    FastAPI documents 422 as a list of validation errors; this app answers every error as
    ``{"detail": "<message>"}`` (see create_app), so 422 is documented that way.
    """
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                needed = access_needed(method.upper(), path)

                def add(code: int, description: str, responses: dict = responses) -> None:
                    responses.setdefault(str(code), {"description": description, "content": _ERROR_CONTENT})

                if "422" in responses:
                    responses["422"] = {"description": "Invalid request", "content": _ERROR_CONTENT}
                if needed == "write" or (needed == "read" and settings.require_auth_for_reads):
                    add(401, "Missing or invalid API key")
                if needed == "write":
                    add(403, "This key may not change documents, writes are disabled, or a keyless write looks cross-site")
                if method in ("post", "put", "patch"):
                    add(400, "Malformed request body (not decodable as its content type)")
                    add(408, "The request body stalled or took too long")
                    add(413, "Request body, upload or document count over the limit")
                    add(415, "Missing or unsupported Content-Type")
                    add(422, "Invalid request")
                if path.startswith(RATE_LIMITED_PREFIXES):
                    add(429, "Rate limit or work budget exceeded (see Retry-After)")
                if "{" in path and "404" not in responses:  # a path naming a resource that may not exist
                    responses["404"] = {"description": "Not found", "content": {"application/json": {"schema": {"type": "object"}}}}
        return schema

    app.openapi = openapi
