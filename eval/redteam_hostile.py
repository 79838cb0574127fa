"""Issue 20, items 5, 6, 7 and 10 for eval/redteam.py: large document reads, hostile files of
the other formats, slowloris at a 1,024 file-descriptor limit, and chat bodies of many parts.

Each scenario reports the /healthz worst latency while it runs.  ``slowloris`` starts ``rag
serve`` in a child process whose open-file limit is 1,024 soft and hard (systemd's default
soft limit, which ``rag serve`` cannot raise then), once with the connection caps off (what
the issue saw) and once as shipped.
"""
from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import hostile_files

Row = tuple[str, str, str, str, bool]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> tuple[float, float]:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def probed(url: str, busy: Callable[[], Any], seconds: float = 120) -> tuple[float, int, Any]:
    """Run ``busy`` in a thread, probing /healthz every 50 ms: (worst latency, failed probes, result)."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", busy()))
    thread.start()
    worst, failed = 0.0, 0
    probed.total = 0  # type: ignore[attr-defined]
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=5) as client:
        while thread.is_alive() and time.monotonic() < deadline:
            started = time.perf_counter()
            probed.total += 1  # type: ignore[attr-defined]
            try:
                if client.get("/healthz").status_code != 200:
                    failed += 1
            except httpx.HTTPError:
                failed += 1
            worst = max(worst, time.perf_counter() - started)
            time.sleep(0.05)
    thread.join(120)
    return worst, failed, out.get("result")


def document_reads(url: str, pipeline, megabytes: int = 20) -> list[Row]:
    """Item 5: one document of ``megabytes`` MB read through the API, the HTML view and the examples."""
    from rag.ingest import document_from_text

    sentence = "Section {i} of the harbour log says that beacon {i} is blue and is lit at dusk for the ships coming in. "
    text = "\n\n".join((sentence * 2).format(i=i).strip() for i in range(megabytes * 2**20 // 210))
    pipeline.upsert_documents([document_from_text(text, "huge-log", {"title": "Harbour log"})])
    rows = []
    http = httpx.Client(base_url=url, timeout=120)
    for path, before in (("/v1/documents/huge-log", "20 MB: 6.9 s, 77 MB of JSON, 6.8 CPU-s, /healthz worst 308 ms (issue: 4 x 20 MB, 21 CPU-s, 145 MB, 10.2 s)"),
                         ("/documents/huge-log", "20 MB: 2.4 s, 23 MB of HTML, 2.35 CPU-s (issue: 6.9 CPU-s)")):
        cpu = _cpu()[0]
        started = time.perf_counter()
        worst, failed, r = probed(url, lambda p=path: http.get(p))
        took, spent = time.perf_counter() - started, _cpu()[0] - cpu
        again = time.perf_counter()
        second = http.get(path, params={"start": 200})
        cached = time.perf_counter() - again
        ok = r.status_code == 200 and len(r.content) < 8 * 2**20 and worst < 0.25 and second.status_code == 200
        now = (f"{r.status_code}, first page {len(r.content) / 2**20:.1f} MB in {took:.2f} s ({spent:.2f} CPU-s, load included), "
               f"next page {cached * 1000:.0f} ms (cached), /healthz worst {worst * 1000:.0f} ms, {failed} failed")
        rows.append(("20.5", f"GET {path.split('/huge')[0]}/{{id}} of a {megabytes} MB document", before, now, ok))
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        examples = http.get("/web/examples")
        timings.append(time.perf_counter() - started)
    rows.append(("20.5", "GET /web/examples three times (every load of /)", "0.39 CPU-s per load with one 20 MB document (issue: 11 CPU-s)",
                 f"{examples.status_code}, {' / '.join(f'{t * 1000:.0f}' for t in timings)} ms (computed once per index version)",
                 examples.status_code == 200 and max(timings[1:]) < 0.1))
    http.close()
    return rows


def chat_parts(url: str) -> Row:
    """Item 10: 180,000 content parts (2.34 MB) in one chat request."""
    content = [{"type": "x"}] * 180_000 + [{"type": "text", "text": "Who was NATO's first Secretary General?"}]
    body = json.dumps({"model": "rag-default", "messages": [{"role": "user", "content": content}]}, separators=(",", ":")).encode()
    cpu = _cpu()[0]
    started = time.perf_counter()
    worst, failed, r = probed(url, lambda: httpx.post(f"{url}/v1/chat/completions", content=body,
                                                         headers={"Content-Type": "application/json"}, timeout=60))
    took, spent = time.perf_counter() - started, _cpu()[0] - cpu
    ok = r.status_code == 413 and worst < 0.25
    return ("20.10", f"chat request of 180,000 content parts ({len(body) / 1e6:.2f} MB)", "0.73 CPU-s on the event loop, charged as one question, /healthz worst 808 ms",
            f"{r.status_code} in {took * 1000:.0f} ms ({spent:.2f} CPU-s with the client), /healthz worst {worst * 1000:.0f} ms", ok)


FORMAT_BEFORE = {
    "many-paragraphs.docx": "88 KB: > 99 CPU-s (1.3-1.7 ms a paragraph)",
    "inflating.docx": "578 KB, 190 MB unzipped (under the 200 MB check): 2.98 GB RSS",
    "lying-sizes.docx": "(new) central directory says 1 KB, unpacks to 190 MB",
    "many-shapes.pptx": "226 KB: 1.54 GB RSS",
    "nested.html": "990 nested <article>, 190k <b>: > 51 CPU-s",
    "page-tree.pdf": "page tree of 2,000,000 entries: 413 after 35.5 CPU-s (5 s budget)",
}


def hostile_formats(url: str, settings) -> list[Row]:
    """Item 6: each hostile file uploaded; status, time, server RSS and CPU (parse workers apart)."""
    rows = []
    http = httpx.Client(base_url=url, timeout=300, headers={"X-Requested-With": "redteam"})
    for name, build in hostile_files.CASES.items():
        data = build()
        rss, (cpu, workers) = _rss_mb(), _cpu()
        started = time.perf_counter()
        # replace=true: the full replay has already stored a "many-paragraphs" document (issue 11).
        worst, failed, r = probed(url, lambda d=data, n=name: http.post("/v1/documents", files={"file": (n, d)},
                                                                    data={"replace": "true"}), 300)
        took = time.perf_counter() - started
        cpu_now, workers_now = _cpu()
        detail = r.json().get("detail", "") if r.headers.get("content-type", "").startswith("application/json") else ""
        ok = (r.status_code in (413, 415, 422) or r.status_code == 201 and took < 30) and worst < 0.25 and _rss_mb() - rss < 1024
        rows.append(("20.6", f"{name} ({len(data) // 1024} KB)", FORMAT_BEFORE[name],
                     f"{r.status_code} in {took:.1f} s ({detail[:90]}), server +{max(0.0, _rss_mb() - rss):.0f} MB RSS, "
                     f"{cpu_now - cpu:.1f} CPU-s + workers {workers_now - workers:.1f}, /healthz worst {worst * 1000:.0f} ms", ok))
    http.close()
    return rows


# ----------------------------------------------------------------------------- slowloris
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(index_dir: Path, port: int, caps: bool) -> subprocess.Popen:
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), "RAG_EMBEDDING_MODEL": "hashing:256", "RAG_READER": "heuristic",
           "RAG_RATE_LIMIT": "", "RAG_LOG_JSON": "false", "RAG_HEADER_TIMEOUT_S": "10", "RAG_BODY_IDLE_TIMEOUT_S": "5"}
    if not caps:
        env.update(RAG_MAX_CONNECTIONS_PER_CLIENT="0", RAG_MAX_CONNECTIONS="1000000")

    def limit() -> None:  # systemd's default: 1,024 descriptors, and here no room to raise it
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-build"],
                               env=env, preexec_fn=limit, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("rag serve did not start")


def _hold_partial_headers(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(sock)
        except OSError:
            pass
    return held


def _slow_bodies(port: int, count: int) -> tuple[int, float]:
    """``count`` uploads whose body trickles one byte a second: (refused at once with 503, seconds until the last was cut)."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        socks.append(sock)
    started = time.monotonic()
    refused, open_ = 0, list(socks)
    while open_ and time.monotonic() - started < 60:
        still = []
        for sock in open_:
            sock.settimeout(0.001)
            try:
                answer = sock.recv(100)
                if answer.startswith(b"HTTP/1.1 503") and time.monotonic() - started < 2:
                    refused += 1
                continue  # answered (503 or 408) or closed
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                continue
            try:
                sock.sendall(b" ")
                still.append(sock)
            except OSError:
                pass
        open_ = still
        time.sleep(1)
    for sock in socks:
        sock.close()
    return refused, time.monotonic() - started


def slowloris(index_dir: Path) -> list[Row]:
    """Item 7 at a 1,024 descriptor limit: 1,200 connections that never finish their headers
    (/healthz probed meanwhile), then 300 slow bodies from one client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))  # the attacker's side needs 1,200+
    results = {}
    for caps in (False, True):
        port = _free_port()
        server = _start(index_dir, port, caps)
        try:
            held: list[socket.socket] = []
            worst, failed, _ = probed(f"http://127.0.0.1:{port}", lambda h=held, p=port: (h.extend(_hold_partial_headers(p, 1200)), time.sleep(4)), 60)
            try:
                probes_ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                probes_ok = False
            for sock in held:
                sock.close()
            bodies = _slow_bodies(port, 300) if caps else None
        finally:
            server.kill()
            server.wait(10)
        results[caps] = (worst, f"{failed} of {probed.total}", probes_ok, bodies)  # type: ignore[attr-defined]
    off, on = results[False], results[True]
    rows = [("20.7", "1,200 connections that never finish their headers, descriptor limit 1,024 (soft and hard)",
             f"82% of /healthz failed (caps off here: {off[1]} failed, worst {off[0] * 1000:.0f} ms)",
             f"{on[1]} /healthz failed, worst {on[0] * 1000:.0f} ms, answering after: {on[2]}",
             on[1].startswith("0 of") and on[0] < 0.25 and on[2])]
    refused, cut = on[3]
    rows.append(("20.7", "300 slow uploads (a byte a second) from one client", "300 connections held, each up to 300 s",
                 f"{refused} answered 503 at once (64 per client), the rest cut after {cut:.0f} s (408)", refused >= 200 and cut < 30))
    return rows
