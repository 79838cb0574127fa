"""Issue 11 against a real uvicorn on loopback: /healthz while an upload parses, client
disconnects (not 500s), slow headers and bodies, and forwarded headers with the serve options."""
from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx

from support import serve
from rag.api import routes_documents
from rag.api.app import create_app
from rag.api.server_options import protocol_with_header_timeout, uvicorn_options
from rag.pipeline import Pipeline
from rag.settings import Settings

SCRIPT = {"X-Requested-With": "pytest"}


def _app(fake_pipeline: Pipeline, **overrides):
    settings = Settings(**{**fake_pipeline.settings.model_dump(), "rate_limit": "", "work_budget": "", "log_json": False, **overrides})
    pipeline = Pipeline(settings, encoder=fake_pipeline.encoder, reader=fake_pipeline.reader)
    pipeline.warm_up()
    return create_app(settings, pipeline, warm_up=False)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def _metric_lines(url: str, prefix: str) -> list[str]:
    return [line for line in httpx.get(f"{url}/metrics").text.splitlines() if line.startswith(prefix)]


def test_healthz_answers_during_a_slow_upload(fake_pipeline, monkeypatch):
    """Parsing runs in a worker thread: /healthz answers while a parse runs (before, the parse ran
    on the event loop and /healthz waited for it).  No wall-clock bound: the parse keeps running
    until /healthz has answered 5 times (or 30 s pass), so the test checks the order of events,
    which a loaded machine cannot change: on the event loop, no answer could come before the
    parse ended."""
    real = routes_documents.document_from_bytes
    parsing, answered = threading.Event(), threading.Event()
    outcome = {}

    def slow_parse(*args, **kwargs):
        parsing.set()
        deadline = time.perf_counter() + 30.0
        while not answered.is_set() and time.perf_counter() < deadline:  # pure-Python CPU work, like a PDF parser
            sum(range(1000))
        outcome["answered_while_parsing"] = answered.is_set()
        return real(*args, **kwargs)

    monkeypatch.setattr(routes_documents, "document_from_bytes", slow_parse)
    with serve(_app(fake_pipeline)) as url:
        result = {}

        def upload():
            files = {"file": ("slow.txt", b"The zorblax beacon is colour Ultramarine Blue.")}
            result["status"] = httpx.post(f"{url}/v1/documents", files=files, headers=SCRIPT, timeout=60).status_code

        thread = threading.Thread(target=upload)
        thread.start()
        assert parsing.wait(10)
        answers = 0
        with httpx.Client(base_url=url, timeout=60) as client:
            while thread.is_alive() and answers < 5:
                assert client.get("/healthz").status_code == 200
                answers += 1
        answered.set()
        thread.join(60)
        assert result["status"] == 201
        assert outcome == {"answered_while_parsing": True}, "/healthz waited for the parse"


def test_client_disconnects_are_not_server_errors(fake_pipeline):
    with serve(_app(fake_pipeline)) as url:
        # an upload cut off half-way: headers promise 100,000 bytes, 1,000 arrive
        sock = _connect(url)
        sock.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-Requested-With: x\r\nContent-Length: 100000\r\n\r\n" + b'{"document_id": "cut", "text": "' + b"a" * 1000
        )
        time.sleep(0.2)
        sock.close()
        # a chat stream closed after its first event
        chat = {"model": "rag-default", "stream": True, "messages": [{"role": "user", "content": "Who was NATO's first Secretary General?"}]}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=chat, timeout=10) as response:
            assert response.status_code == 200
            next(response.iter_lines())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _metric_lines(url, 'rag_http_client_disconnects_total{method="POST",route="/v1/documents"}'):
            time.sleep(0.05)
        assert _metric_lines(url, 'rag_http_client_disconnects_total{method="POST",route="/v1/documents"}')
        assert not [line for line in _metric_lines(url, "rag_http_requests_total") if 'status="500"' in line]
        assert not _metric_lines(url, "rag_http_errors_total{")


def test_slow_headers_are_cut_off():
    """uvicorn alone never times out a request's headers; with the serve options it does."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    header_timeout = 0.5
    with serve(app, http=protocol_with_header_timeout(header_timeout)) as url:
        sock = _connect(url)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        for _ in range(4):  # one header byte every 0.2 s
            time.sleep(0.2)
            try:
                sock.sendall(b"a")
            except OSError:
                break
        sock.settimeout(3)
        try:
            data = sock.recv(100)
        except (ConnectionResetError, TimeoutError):
            data = b"reset"
        # closed at the header deadline: well before the client's 3 s wait ends, however loaded the machine
        assert data in (b"", b"reset") and time.monotonic() - started < 5 * header_timeout
        sock.close()
        # a complete request on time, and a kept-alive second request, are answered as before
        with httpx.Client(base_url=url) as client:
            assert client.get("/").text == "ok"
            time.sleep(0.7)  # longer than the header deadline, while idle: keep-alive closes it or not
            assert client.get("/").text == "ok"


def test_slow_body_is_408(fake_pipeline):
    idle_timeout = 0.5
    with serve(_app(fake_pipeline, body_idle_timeout_s=idle_timeout)) as url:
        sock = _connect(url)
        sock.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n" + b'{"document_id": "slow", '
        )
        sock.settimeout(5)
        started = time.monotonic()
        reply = sock.recv(4096)
        sock.close()
        assert reply.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 6 * idle_timeout  # the client waits 5 s


def test_serve_options_ignore_forwarded_for(fake_pipeline):
    """uvicorn's default proxy_headers=True trusts X-Forwarded-For from 127.0.0.1, so each
    spoofed address got its own rate limit (50 of 50 served in issue 11)."""
    app = _app(fake_pipeline, rate_limit="3/minute")
    options = {k: v for k, v in uvicorn_options(app.state.settings).items() if k not in ("host", "port")}
    with serve(app, **options) as url:
        codes = [httpx.get(f"{url}/v1/documents", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(6)]
        assert codes == [200, 200, 200, 429, 429, 429]
        assert "server" not in httpx.get(f"{url}/healthz").headers
