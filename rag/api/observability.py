"""Request ids, structured JSON logs, Prometheus metrics and the Server-Timing header.

Every HTTP request gets an id: the caller's ``X-Request-ID`` when it is a sane token (at most
128 of ``A-Za-z0-9._:-``), otherwise a fresh one.  The id is echoed in the ``X-Request-ID``
response header, is on every log line written while the request runs (``request_id``), and is
in the body of a 500 answer, so a user's report can be matched to the server's log.

* Logs: ``rag.access`` writes one JSON line per request (method, path, route, status,
  duration_ms, client, request_id) when ``RAG_LOG_JSON`` is on (the default).
  :func:`configure_logging` turns every log line of the process into JSON (for ``rag serve``).
* Metrics (``GET /metrics``, Prometheus text format; same access rule as other reads):
  ``rag_http_requests_total``, ``rag_http_errors_total`` (status >= 400),
  ``rag_http_request_duration_seconds``, ``rag_http_requests_in_flight``,
  ``rag_stage_duration_seconds{stage=retrieve|read|pipeline|index_update}``, and the size of
  the live index: ``rag_index_documents``, ``rag_index_passages``, ``rag_index_bytes``,
  ``rag_index_info{version,embedding_model}``.
* ``Server-Timing``: the pipeline stages of this request plus ``app`` (the whole request), in
  milliseconds, readable in the browser's developer tools.
* A client that goes away before its answer is complete (an upload cut off, a chat stream
  closed) is not a server error: it is logged at INFO, recorded as status 499 (nginx's "client
  closed request") and counted in ``rag_http_client_disconnects_total``, not in
  ``rag_http_errors_total``.

Stage times come from the pipeline itself: :func:`setup` gives it :func:`record_stage` as its
stage recorder, which files each stage (retrieve, read, pipeline, index_update) under the
request that is running, through a context variable; outside a request it records nothing.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from rag.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

ACCESS_LOGGER = "rag.access"
REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection before the answer"
# Label values must come from a fixed set, never from the client: the method is any token a
# client sends and this middleware runs before authentication, so 20,000 keyless requests with
# made-up methods took /metrics from 26 lines to 460,047 (42 MB, 4.7 s a scrape; issue 20).
# With these 8 methods x the app's route templates (+ "unmatched") x the statuses the app
# answers, the number of series is fixed when the app is built.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
# Pipeline timings_ms keys -> stage names ("total" of the pipeline is not the whole request).

log = logging.getLogger(__name__)


@dataclass
class RequestContext:
    request_id: str
    metrics: Metrics | None = None
    stages: dict[str, float] = field(default_factory=dict)  # milliseconds


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("rag_request", default=None)


def current_request_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx else None


def record_stage(stage: str, milliseconds: float) -> None:
    """Add time to a stage of the running request (no-op outside a request)."""
    ctx = _current.get()
    if ctx is None:
        return
    ctx.stages[stage] = ctx.stages.get(stage, 0.0) + milliseconds
    if ctx.metrics is not None:
        ctx.metrics.stage_seconds.labels(stage).observe(milliseconds / 1000)


# --------------------------------------------------------------------------------- logging
_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            data["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _json_handler(level: int = logging.NOTSET) -> logging.Handler:
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level)
    handler._rag_json = True  # type: ignore[attr-defined]
    return handler


def configure_logging(json_logs: bool = True, level: int = logging.INFO) -> None:
    """Make every log line of the process JSON on stderr (call once, e.g. from ``rag serve``)."""
    root = logging.getLogger()
    if json_logs:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(_json_handler())
        access = logging.getLogger(ACCESS_LOGGER)
        for handler in [h for h in access.handlers if getattr(h, "_rag_json", False)]:
            access.removeHandler(handler)
        access.propagate = True
    root.setLevel(level)


def _setup_access_log(json_logs: bool) -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO)
    root_is_json = any(getattr(h, "_rag_json", False) for h in logging.getLogger().handlers)
    if json_logs and not root_is_json and not any(getattr(h, "_rag_json", False) for h in access.handlers):
        access.addHandler(_json_handler())
        access.propagate = False  # the root handler (plain text) would print it a second time


# --------------------------------------------------------------------------------- metrics
class _IndexCollector:
    """Size of the live index, read at scrape time from the app's pipeline."""

    def __init__(self, app: FastAPI):
        self.app = app
        self._bytes: tuple[str, int] | None = None  # (version folder, bytes) cache

    def describe(self):
        return []

    def collect(self):
        pipeline = getattr(self.app.state, "pipeline", None)
        index = pipeline.loaded_index if pipeline is not None else None
        if index is None:
            return
        yield GaugeMetricFamily("rag_index_documents", "Documents in the live index", value=len(index.documents))
        yield GaugeMetricFamily("rag_index_passages", "Passages in the live index", value=len(index.passages))
        folder = getattr(index, "folder", None)
        if folder is not None:
            yield GaugeMetricFamily("rag_index_bytes", "Bytes on disk of the live index version", value=self._folder_bytes(Path(folder)))
        info = GaugeMetricFamily("rag_index_info", "The live index version", labels=["version", "embedding_model"])
        info.add_metric([Path(folder).name if folder else "", str(index.manifest.get("embedding_model", ""))], 1)
        yield info

    def _folder_bytes(self, folder: Path) -> int:
        if self._bytes is None or self._bytes[0] != str(folder):
            try:
                total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            except OSError:
                total = 0
            self._bytes = (str(folder), total)
        return self._bytes[1]


class Metrics:
    def __init__(self, app: FastAPI):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rag_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r)
        self.errors = Counter("rag_http_errors", "HTTP answers with status >= 400", ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "rag_http_request_duration_seconds", "Time to answer a request", ["method", "route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.in_flight = Gauge("rag_http_requests_in_flight", "Requests being answered", registry=r)
        self.disconnects = Counter(
            "rag_http_client_disconnects", "Requests whose client left before the answer was complete", ["method", "route"], registry=r
        )
        self.stage_seconds = Histogram(
            "rag_stage_duration_seconds", "Time per pipeline stage", ["stage"], buckets=LATENCY_BUCKETS, registry=r
        )
        r.register(_IndexCollector(app))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        if status == CLIENT_CLOSED:
            self.disconnects.labels(method, route).inc()
        elif status >= 400:
            self.errors.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


# ------------------------------------------------------------------------------ middleware
def _route_of(scope: Scope) -> str:
    """The matched route's template (one of the app's own), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def server_timing(stages: dict[str, float], app_ms: float) -> str:
    parts = [f"{name};dur={ms:.1f}" for name, ms in stages.items()]
    parts.append(f"app;dur={app_ms:.1f}")
    return ", ".join(parts)


class Observability:
    """Outermost middleware: request id, access log, metrics, Server-Timing, JSON 500s."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self.access = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = RequestContext(_request_id(scope), self.metrics)
        token = _current.set(ctx)
        status = 500
        response_started = False
        response_complete = False
        disconnected = False
        self.metrics.in_flight.inc()

        async def receive_wrapper() -> dict:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def send_wrapper(message: dict) -> None:
            nonlocal status, response_started, response_complete
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                response_complete = True
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"x-request-id", b"server-timing")]
                headers.append((b"x-request-id", ctx.request_id.encode()))
                app_ms = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", server_timing(ctx.stages, app_ms).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
            if disconnected and not response_complete:
                status = CLIENT_CLOSED
        except Exception as exc:
            if disconnected or isinstance(exc, ClientDisconnect):
                # Whatever the route raised after its client left (starlette's ClientDisconnect
                # while reading an upload, a stream cut off) is the client's doing, not an error.
                status = CLIENT_CLOSED
                log.info("client disconnected during %s %s", scope["method"], scope["path"], extra={"request_id": ctx.request_id})
                return
            status = 500
            log.exception("unhandled error in %s %s", scope["method"], scope["path"], extra={"request_id": ctx.request_id})
            if not response_started:
                body = json.dumps({"detail": f"internal error; request id {ctx.request_id}"}).encode()
                await send_wrapper(
                    {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
                )
                await send({"type": "http.response.body", "body": body})
            raise
        finally:
            seconds = time.perf_counter() - started
            self.metrics.in_flight.dec()
            route = _route_of(scope)
            self.metrics.observe(method_label(scope["method"]), route, status, seconds)
            client = scope.get("client")
            self.access.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                seconds * 1000,
                extra={
                    "request_id": ctx.request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
            _current.reset(token)


def setup(app: FastAPI, settings: Settings) -> Metrics:
    """Install the middleware (call after every other add_middleware: it must be outermost),
    the /metrics route, the access log and the pipeline instrumentation."""
    metrics = Metrics(app)
    app.state.metrics = metrics
    _setup_access_log(settings.log_json)
    pipeline = getattr(app.state, "pipeline", None)
    if pipeline is not None:
        # The pipeline reports its stages to whichever request is running (no monkey-patching).
        pipeline.stage_recorder = record_stage

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(Observability, metrics=metrics)
    return metrics
