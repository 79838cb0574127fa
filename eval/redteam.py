"""Replay issue 11's red-team scenarios (items 1-9), and issue 20's as far as they are fixed
(items labelled "20.<n>"; items 5, 6, 7 and 10 in eval/redteam_hostile.py, items 2, 8 and 9 in
eval/redteam_storage.py, each on an index of its own), against a live
service on loopback.

    .venv/bin/python eval/redteam.py [--out eval/redteam.json]

Starts the app with uvicorn on 127.0.0.1 (a free port), over a copy of corpus/ indexed with
the deterministic hashing encoder and the heuristic reader (no model download), started the
way ``rag serve`` should start it (rag/api/server_options.py), and prints one line per
scenario: what was sent, what the issue saw, what the service answers now, pass/fail.
Each scenario has its own time bound; the whole run takes ~20 s on 2 cores (< 3 minutes).
Exit status 1 when any scenario fails.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

import redteam_hostile  # noqa: E402
from hostile_files import pdf_from_objects  # noqa: E402
from rag.api import routes_documents  # noqa: E402
from rag.api.app import create_app  # noqa: E402
from rag.api.server_options import uvicorn_options  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402

TARGET = "korea-2024-nato-summit"
QUESTION = "Who was NATO's first Secretary General?"


class Service:
    """uvicorn in a thread on a free loopback port, with the serve options."""

    def __init__(self, settings: Settings, pipeline: Pipeline, host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port")}
        app = create_app(settings, pipeline, warm_up=False)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on", **options))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def _healthz_while(url: str, busy: Callable[[], Any], seconds: float) -> tuple[float, Any]:
    """Run ``busy`` in a thread and probe /healthz meanwhile; (worst latency, busy's result)."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", busy()))
    thread.start()
    time.sleep(0.05)
    worst = 0.0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as client:
        while thread.is_alive() and time.monotonic() < deadline:
            started = time.perf_counter()
            client.get("/healthz")
            worst = max(worst, time.perf_counter() - started)
            time.sleep(0.05)
    thread.join(60)
    return worst, out.get("result")


def scenarios(url: str, settings: Settings) -> list[tuple[str, str, str, str, bool]]:
    """(item, scenario, issue saw, now, passed)."""
    rows = []
    http = httpx.Client(base_url=url, timeout=60)

    def row(item: str, scenario: str, before: str, now: str, ok: bool) -> None:
        rows.append((item, scenario, before, now, ok))
        print(f"{'PASS' if ok else 'FAIL'}  [{item}] {scenario}: {now}", flush=True)

    # 1: quadratic follow-up regex
    messages = [{"role": "user", "content": "what is x" + " " * 40_000 + "y"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and it?"}]
    chat = {"model": "rag-default", "messages": messages}

    def timed_chat() -> tuple[int, float]:
        started = time.perf_counter()
        return http.post("/v1/chat/completions", json=chat).status_code, time.perf_counter() - started

    worst, (status, took) = _healthz_while(url, timed_chat, 10)
    # 400: the rewritten question is over RAG_MAX_QUESTION_CHARS; what matters is how long it took
    row("1", "follow-up after a 40,000-space message", "7.1 s, /healthz blocked", f"{status} in {took * 1000:.0f} ms, /healthz worst {worst * 1000:.0f} ms",
        took < 0.5 and worst < 0.1)

    # 5: cross-site writes (what a page of another origin can send without a preflight)
    before = http.get(f"/v1/documents/{TARGET}").json()["text"]
    evil = {"Origin": "https://evil.example"}
    form = http.post("/v1/documents", files={"file": ("x.txt", b"Overwritten by a web page.")}, data={"document_id": TARGET}, headers=evil)
    blob = http.post("/v1/documents", content=json.dumps({"document_id": TARGET, "text": "Overwritten."}).encode(), headers=evil)
    after = http.get(f"/v1/documents/{TARGET}").json()["text"]
    row("5", "cross-origin FormData upload", "201, document added", str(form.status_code), form.status_code == 403)
    row("5", "cross-origin Blob without Content-Type", "201, document overwritten", f"{blob.status_code}, document unchanged: {after == before}",
        blob.status_code == 415 and after == before)
    proof = http.post("/v1/documents", files={"file": ("n.txt", b"Scripts send a header.")}, data={"document_id": "proof"}, headers={"X-Requested-With": "redteam"})
    row("5", "keyless local upload with X-Requested-With", "201", str(proof.status_code), proof.status_code == 201)

    # 7: the 500s
    batch = http.post("/v1/ask:batch", content=b'{"questions": ["who \\ud800"]}', headers={"Content-Type": "application/json"}).status_code
    search = http.post("/v1/search:batch", content=b'{"queries": ["\\ud800"]}', headers={"Content-Type": "application/json"}).status_code
    chat_s = http.post("/v1/chat/completions", content=b'{"model":"rag-default","messages":[{"role":"user","content":"\\ud800"}]}',
                       headers={"Content-Type": "application/json"}).status_code
    row("7", "unpaired surrogate in ask:batch / search:batch / chat", "500 / 500 / 500", f"{batch} / {search} / {chat_s}",
        batch == 422 and search == 422 and chat_s == 400)
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Requested-With: x\r\n"
                 b"Content-Length: 100000\r\n\r\n{\"text\": \"" + b"a" * 1000)
    time.sleep(0.3)
    sock.close()
    time.sleep(0.3)
    metrics = http.get("/metrics").text
    fives = [line for line in metrics.splitlines() if line.startswith("rag_http_requests_total") and 'status="500"' in line]
    cut = [line for line in metrics.splitlines() if line.startswith("rag_http_client_disconnects_total") and "/v1/documents" in line]
    row("7", "client disconnects mid-upload", "logged as error, counted as 500", f"500s in /metrics: {len(fives)}, disconnects counted: {bool(cut)}",
        not fives and bool(cut))

    # 8: cost limits and forwarded headers
    big = http.post("/v1/ask:batch", json={"questions": [QUESTION] * 64})
    row("8", "one ask:batch of 64 questions", "served (4 at once: 73 s of work)", f"{big.status_code} (budget {settings.work_budget})", big.status_code in (200, 429))
    spent = [http.post("/v1/ask:batch", json={"questions": [QUESTION] * 64}).status_code for _ in range(12)]
    row("8", "12 more 64-question batches in a minute", "all served", f"{spent.count(200)} served, {spent.count(429)} x 429", 429 in spent)
    history = {"model": "rag-default", "messages": [{"role": "user", "content": "hi"}] * 520_001}
    started = time.perf_counter()
    huge = http.post("/v1/chat/completions", json=history)
    row("8", "chat history of 520,001 messages", "9.5 s", f"{huge.status_code} in {time.perf_counter() - started:.2f} s", huge.status_code == 413)
    # 9: smaller
    link = http.post("/v1/chat/completions", json={"model": "rag-default", "messages": [{"role": "user", "content": QUESTION}]},
                     headers={"Host": "evil.example"})
    urls = [a["url_citation"]["url"] for a in link.json().get("choices", [{}])[0].get("message", {}).get("annotations", [])] if link.status_code == 200 else []
    row("9", "Host header in citation links", "links to http://evil.example/...", f"{link.status_code}, links: {urls[:1]}",
        link.status_code in (200, 429) and not any("evil.example" in u for u in urls))
    http.close()
    return rows


def protected_reads(base: Path, pipeline: Pipeline) -> list[tuple[str, str, str, str, bool]]:
    settings = Settings(**{**pipeline.settings.model_dump(), "api_keys": "w-key", "read_api_keys": "r-key", "require_auth_for_reads": True})
    rows = []
    with Service(settings, Pipeline(settings, encoder=pipeline.encoder, reader=pipeline.reader)) as url:
        codes = {p: httpx.get(url + p).status_code for p in ("/openapi.json", "/docs", "/redoc", "/")}
        keyed = {p: httpx.get(url + p, headers={"Authorization": "Bearer r-key"}).status_code for p in codes}
        ok = all(c == 401 for c in codes.values()) and all(c == 200 for c in keyed.values())
        rows.append(("9", "/openapi.json, /docs, /redoc, / with reads protected", "200 without a key",
                     f"{sorted(set(codes.values()))} without, {sorted(set(keyed.values()))} with a read key", ok))
        print(f"{'PASS' if ok else 'FAIL'}  [9] docs behind read auth: {codes} / {keyed}", flush=True)
    return rows


def spoofed_forwarded_for(pipeline: Pipeline) -> tuple[str, str, str, str, bool]:
    """Item 8: a rate limit of 20/minute, 50 requests each claiming another X-Forwarded-For."""
    settings = Settings(**{**pipeline.settings.model_dump(), "rate_limit": "20/minute"})
    with Service(settings, Pipeline(settings, encoder=pipeline.encoder, reader=pipeline.reader)) as url:
        codes = [httpx.get(f"{url}/v1/models", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(50)]
    ok = codes.count(200) == 20
    print(f"{'PASS' if ok else 'FAIL'}  [8] spoofed X-Forwarded-For: {codes.count(200)} served", flush=True)
    return ("8", "50 requests with spoofed X-Forwarded-For, limit 20/minute", "50 of 50 served",
            f"{codes.count(200)} served, {codes.count(429)} x 429 (one client)", ok)


def slow_upload(url: str) -> tuple[str, str, str, str, bool]:
    """Item 9 (parsing off the loop): a parser that takes 2 s of CPU, /healthz meanwhile."""
    real = routes_documents.document_from_bytes

    def slow(*args, **kwargs):
        deadline = time.perf_counter() + 2.0
        while time.perf_counter() < deadline:
            sum(range(1000))
        return real(*args, **kwargs)

    routes_documents.document_from_bytes = slow
    try:
        files = {"file": ("slow.txt", b"A slow document about beacons.")}
        worst, status = _healthz_while(url, lambda: httpx.post(f"{url}/v1/documents", files=files, headers={"X-Requested-With": "x"}, timeout=30).status_code, 10)
    finally:
        routes_documents.document_from_bytes = real
    ok = worst < 0.1
    print(f"{'PASS' if ok else 'FAIL'}  [9] /healthz during a 2 s parse: {status}, worst {worst * 1000:.0f} ms", flush=True)
    return ("9", "/healthz during a 2 s upload parse", "blocked for the whole parse (22.6 s PDF)", f"{status}, worst {worst * 1000:.0f} ms", ok)


def slow_headers(url: str, settings: Settings) -> tuple[str, str, str, str, bool]:
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    started = time.monotonic()
    sock.settimeout(settings.header_timeout_s + 5)
    try:
        closed = sock.recv(10) == b""
    except (ConnectionResetError, TimeoutError):
        closed = False
    waited = time.monotonic() - started
    sock.close()
    ok = closed and waited < settings.header_timeout_s + 2
    print(f"{'PASS' if ok else 'FAIL'}  [9] slow headers: closed after {waited:.1f} s", flush=True)
    return ("9", "request headers never completed", "connection held open", f"closed after {waited:.1f} s", ok)


def _bomb_pdf(pages: int = 100, stream_mb: int = 20) -> bytes:
    """Pages that all draw one content stream of ``stream_mb`` MB (compressed to a few KB)."""
    import zlib

    content = zlib.compress(b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n" + b" " * (stream_mb * 2**20), 9)
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", f"<< /Length {len(content)} /Filter /FlateDecode >>"]
    kids = []
    for _ in range(pages):
        objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources << /Font << /F1 4 0 R >> >> >>")
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {pages} >>"
    objects.insert(3, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = [k + 1 for k in kids]
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {pages} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        if number == 3:
            out += f"{number} 0 obj\n{body}\nstream\n".encode() + content + b"\nendstream\nendobj\n"
        else:
            out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def ingestion(url: str) -> list[tuple[str, str, str, str, bool]]:
    """Items 2-4: documents that made every question slow, ingestion bombs, lost documents."""
    rows = []
    local = {"X-Requested-With": "redteam"}
    http = httpx.Client(base_url=url, timeout=180, headers=local)

    def row(item: str, scenario: str, before: str, now: str, ok: bool) -> None:
        rows.append((item, scenario, before, now, ok))
        print(f"{'PASS' if ok else 'FAIL'}  [{item}] {scenario}: {now}", flush=True)

    text = "The harbour record starts here. " + "X" * 40_000 + ". The harbour is at Busan."
    http.post("/v1/documents", json={"document_id": "long-token", "text": text})
    started = time.perf_counter()
    r = http.post("/v1/search", json={"query": "Where is the harbour?"})
    r = http.post("/v1/ask", json={"question": "Where is the harbour?"})
    seconds = time.perf_counter() - started
    row("2", "questions over a document with a 40,000-character token", "6.5 s each, event loop blocked", f"{r.status_code} in {seconds:.2f} s", r.status_code == 200 and seconds < 2)

    bomb = _bomb_pdf()
    health = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            httpx.get(f"{url}/healthz", timeout=10)
            health.append(time.perf_counter() - t)
            time.sleep(0.2)

    prober = threading.Thread(target=probe)
    prober.start()
    started = time.perf_counter()
    r = http.post("/v1/documents", files={"file": ("bomb.pdf", bomb, "application/pdf")})
    seconds = time.perf_counter() - started
    stop.set()
    prober.join()
    worst = max(health, default=0.0) * 1000
    row("3", f"{len(bomb) // 1024} KB PDF whose 100 pages share one 20 MB stream (parse budget 5 s)", "22.6 s, /healthz blocked",
        f"{r.status_code} in {seconds:.1f} s, /healthz worst {worst:.0f} ms", r.status_code == 413 and worst < 500)

    many = "\n\n".join(f"Short paragraph number {i} of the upload." for i in range(20_000))
    started = time.perf_counter()
    r = http.post("/v1/documents", json={"document_id": "many-paragraphs", "text": many})
    seconds = time.perf_counter() - started
    row("3", "20,000 short paragraphs", "50 s (quadratic de-duplication)", f"{r.status_code} in {seconds:.1f} s", r.status_code == 201 and seconds < 30)

    tiny = ("<p>x</p>" * 199_000).encode()
    started = time.perf_counter()
    r = http.post("/v1/documents", files={"file": ("tiny.html", tiny, "text/html")})
    seconds = time.perf_counter() - started
    row("3", "<p>x</p> x 199,000", "did not finish in 150 s", f"{r.status_code} in {seconds:.1f} s", r.status_code in (201, 413, 415) and seconds < 90)

    names = ["отчёт.txt", "доклад.txt", "заметка.txt", "名前.txt"]
    for i, name in enumerate(names):
        http.post("/v1/documents", files={"file": (name, f"Report {i} says the value is {i}.".encode(), "text/plain")})
    ids = {d["document_id"] for d in http.get("/v1/documents").json()["documents"]}
    kept = sum(n.removesuffix(".txt").lower() in ids for n in names)
    r = http.post("/v1/documents", files={"file": ("Отчёт.txt", b"Another report.", "text/plain")})
    row("4", "four non-ASCII file names, then a fifth colliding with the first", "1 of 4 kept, silently replaced",
        f"{kept} of 4 kept; collision {r.status_code}", kept == 4 and r.status_code == 409)
    return rows


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def hardening_iii(url: str, settings: Settings) -> list[tuple[str, str, str, str, bool]]:
    """Issue 20 (Hardening III): the items fixed so far, labelled "20.<item>"."""
    rows = []
    http = httpx.Client(base_url=url, timeout=60, headers={"X-Requested-With": "redteam"})

    def row(item: str, scenario: str, before: str, now: str, ok: bool) -> None:
        rows.append((f"20.{item}", scenario, before, now, ok))
        print(f"{'PASS' if ok else 'FAIL'}  [20.{item}] {scenario}: {now}", flush=True)

    # 4: label values from the client (method) must not mint metric series
    lines_before = len(http.get("/metrics").text.splitlines())
    for i in range(2_000):
        http.request(f"M{i}", f"/made-up/{i}")
    lines_after = len(http.get("/metrics").text.splitlines())
    row("4", "2,000 keyless requests with made-up methods and paths", "/metrics 26 -> 460,047 lines after 20,000",
        f"/metrics {lines_before} -> {lines_after} lines", lines_after - lines_before < 100)

    # 3: a title or first heading copied into every block and passage
    paragraphs = "\n\n".join(f"Paragraph {i} says that beacon number {i} is blue and stands near the harbour wall." for i in range(1_000))
    markdown = f"# {'H' * 500_000}\n\n{paragraphs}\n".encode()
    size_before = _folder_bytes(settings.index_dir)
    worst, status = _healthz_while(url, lambda: http.post("/v1/documents", files={"file": ("heading.md", markdown)}, timeout=120).status_code, 120)
    grown = _folder_bytes(settings.index_dir) - size_before
    row("3", f"{len(markdown) // 1024} KB .md with a 500,000-character heading, 1,000 paragraphs", "994 MB index, /healthz worst 2.4 s",
        f"{status}, index +{grown / 2**20:.1f} MB, /healthz worst {worst * 1000:.0f} ms", status == 201 and grown < 5 * len(markdown))
    title = http.post("/v1/documents", files={"file": ("t.txt", b"A text about beacons.")}, data={"title": "T" * 1_000_000})
    row("3", "multipart title of 1,000,000 characters", "accepted; BM25 searches on its passages 0.02 s -> 1.25 s",
        str(title.status_code), title.status_code == 422)

    # 1: a parse that holds the GIL: stopped by the OS at the CPU budget, /healthz meanwhile
    lines = [" ".join(f"w{i * 20 + j}" for j in range(20)) for i in range(20_000 // 20)]
    dense = _one_page_pdf([(20, 780 - 0.75 * k, 0.7, text) for k, text in enumerate(lines)])
    started = time.perf_counter()
    worst, status = _healthz_while(url, lambda: http.post("/v1/documents", files={"file": ("dense.pdf", dense, "application/pdf")}).status_code, 120)
    took = time.perf_counter() - started
    row("1", f"{len(dense) // 1024} KB one-page PDF of 20,000 words (parse budget {settings.max_parse_seconds:.0f} CPU-s)",
        ">= 139 CPU-s, no answer in 150 s, /healthz timed out at 30 s", f"{status} in {took:.1f} s, /healthz worst {worst * 1000:.0f} ms",
        status == 413 and worst < 0.25)

    # 11: deep nesting
    deep = b"[" * 100_000
    codes = [http.post(path, content=deep, headers={"Content-Type": "application/json"}).status_code
             for path in ("/v1/documents", "/v1/chat/completions", "/v1/ask")]
    row("11", "JSON body of '[' x 100,000 on /v1/documents / chat / ask", "500 / 500 / 400", " / ".join(map(str, codes)), codes == [400, 400, 400])
    pdf = _nested_title_pdf()
    r = http.post("/v1/documents", files={"file": ("nested.pdf", pdf, "application/pdf")})
    row("11", "PDF whose info /Title is nested 100,000 arrays deep", "500", str(r.status_code), r.status_code == 201)

    # 12: wrong refusals and silent loss in parsing
    wrapped = "\n".join(f"Line {i:06d} of an ordinary hard-wrapped text about beacons.." for i in range(19_500)).encode()
    r = http.post("/v1/documents", files={"file": ("wrapped.txt", wrapped)})
    row("12", f"{len(wrapped) / 1e6:.2f} MB of 60-character lines, no blank line", "refused: 'a line of 1,173,166 characters'",
        str(r.status_code), r.status_code == 201)
    nested = "".join("  " * level + f"- nesteditem{level} of the list\n" for level in range(12)) + "\n" + ">" * 25 + " deepquotetext here\n"
    r = http.post("/v1/documents", files={"file": ("nesting.md", nested.encode())})
    text = http.get("/v1/documents/nesting").json().get("text", "") if r.status_code == 201 else ""
    kept = sum(f"nesteditem{level} " in text for level in range(12))
    row("12", "Markdown list nested 12 levels, quote nested 25", "9 of 12 items, quote gone, 201",
        f"{r.status_code}, {kept} of 12 items, quote kept: {'deepquotetext' in text}", kept == 12 and "deepquotetext" in text)

    # 13: server paths and the Host header
    folders = (str(settings.index_dir), str(settings.corpus_dir))
    listing = http.get("/v1/documents", params={"limit": 1000}).text
    row("13", "source_path in GET /v1/documents", "absolute server paths", f"server folders in the list: {any(f in listing for f in folders)}",
        not any(f in listing for f in folders))
    moved = http.get("/v1/documents/", headers={"Host": "evil.example"}, follow_redirects=False)
    location = moved.headers.get("location", "")
    row("13", "trailing-slash redirect with Host: evil.example", "Location: http://evil.example/v1/documents", f"{moved.status_code} Location: {location}",
        "evil.example" not in location)
    http.close()
    return rows


def hostile_inputs(base: Path, pipeline: Pipeline) -> list[tuple[str, str, str, str, bool]]:
    """Items 5, 6, 7 and 10 (eval/redteam_hostile.py), on a service of their own (a fresh work
    budget: the batches above spent the loopback client's)."""
    rows: list[tuple[str, str, str, str, bool]] = []
    served = Pipeline(pipeline.settings, encoder=pipeline.encoder, reader=pipeline.reader)
    with Service(pipeline.settings, served) as url:
        rows.append(redteam_hostile.chat_parts(url))
        rows += redteam_hostile.hostile_formats(url, pipeline.settings)
        rows += redteam_hostile.document_reads(url, served)
    rows += redteam_hostile.slowloris(pipeline.settings.index_dir)
    for item, scenario, _, now, ok in rows:
        print(f"{'PASS' if ok else 'FAIL'}  [{item}] {scenario}: {now}", flush=True)
    return rows


def not_ready_paths(base: Path, pipeline: Pipeline) -> tuple[str, str, str, str, bool]:
    """Item 13: /readyz and 503 bodies of a service with no index yet name no folder."""
    settings = Settings(**{**pipeline.settings.model_dump(), "index_dir": base / "no-index-here"})
    with Service(settings, Pipeline(settings, encoder=pipeline.encoder, reader=pipeline.reader)) as url:
        answers = [httpx.get(f"{url}/readyz"), httpx.post(f"{url}/v1/ask", json={"question": QUESTION})]
    leaked = any("no-index-here" in r.text for r in answers)
    ok = not leaked and all(r.status_code == 503 for r in answers)
    print(f"{'PASS' if ok else 'FAIL'}  [20.13] not-ready bodies: {[r.status_code for r in answers]}, folder named: {leaked}", flush=True)
    return ("20.13", "/readyz and /v1/ask with no index yet", "503 'no index at /abs/path'",
            f"{' / '.join(str(r.status_code) for r in answers)}, folder named: {leaked}", ok)


def _one_page_pdf(lines: list[tuple[float, float, float, str]]) -> bytes:
    """One page of (x, y, size, text) lines in Helvetica."""
    stream = "".join(f"BT /F1 {size} Tf {x} {y} Td ({text}) Tj ET\n" for x, y, size, text in lines).encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    return pdf_from_objects(objects)


def _nested_title_pdf() -> bytes:
    """One page of text; the info dictionary's /Title is an array nested 100,000 deep."""
    stream = b"BT /F1 12 Tf 72 720 Td (The beacon at the harbour is blue.) Tj ET\n"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Title " + b"[" * 100_000 + b"]" * 100_000 + b" >>"]
    return pdf_from_objects(objects, b" /Info 6 0 R")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    parser.add_argument("--only-issue-20", action="store_true", help="replay only issue 20's scenarios (a few seconds)")
    args = parser.parse_args()
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="rag-redteam-"))
    try:
        shutil.copytree(ROOT / "corpus", base / "corpus")
        settings = Settings(index_dir=base / "index", corpus_dir=base / "corpus", embedding_model="hashing:256", reader="heuristic",
                            rate_limit="", log_json=False, header_timeout_s=3.0, max_parse_seconds=5.0)
        pipeline = Pipeline(settings)
        pipeline.warm_up()
        pipeline.index_paths([base / "corpus"])
        with Service(settings, pipeline) as url:
            if args.only_issue_20:
                rows = hardening_iii(url, settings)
            else:
                rows = [slow_upload(url), slow_headers(url, settings)]
                rows += scenarios(url, settings)
                rows += ingestion(url)
                rows += hardening_iii(url, settings)
        rows.append(not_ready_paths(base, pipeline))
        rows += hostile_inputs(base, pipeline)
        # Items 2, 8, 9 (full disk, writer lock, damaged files): each on an index of its own
        # (imported here: redteam_storage reuses this module's service and probes).
        import redteam_storage

        storage = base / "storage"
        storage.mkdir()
        rows += redteam_storage.storage_cases(storage, Settings(embedding_model="hashing:256", reader="heuristic", rate_limit="",
                                                                log_json=False, header_timeout_s=3.0, max_parse_seconds=5.0,
                                                                background_compaction=False))
        if not args.only_issue_20:
            rows += protected_reads(base, pipeline)
            rows.append(spoofed_forwarded_for(pipeline))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report(rows, time.monotonic() - started, args.out)


def report(rows: list[tuple[str, str, str, str, bool]], elapsed: float, out: Path | None) -> int:
    """Print the table (and write it as JSON to ``out``); the exit status: 1 when any row failed."""
    print("\n| item | scenario | the issue saw | now | result |\n|---|---|---|---|---|")
    for item, scenario, before, now, ok in rows:
        print(f"| {item} | {scenario} | {before} | {now} | {'pass' if ok else 'FAIL'} |")
    print(f"\n{sum(r[4] for r in rows)}/{len(rows)} passed in {elapsed:.0f} s")
    if out:
        out.write_text(json.dumps([dict(zip(("item", "scenario", "before", "now", "passed"), r)) for r in rows], indent=2))
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
