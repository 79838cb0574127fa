"""The service at scale (issue 13): `rag serve` over a large index, measured over HTTP.

The index is the one ``rag bench --section writes`` built for its largest size (SQuAD dev
paragraph texts cycled to the size, vectors drawn around the real MiniLM embedding of each
text's own paragraph: rag/bench/data.py ``cycled``), next to one holding the 2,067 SQuAD dev
paragraphs with their real embeddings, for comparison.  For each, the real server starts
(`python -m rag.cli serve --no-build`, the real encoder and reader) and we measure: seconds
from process start to ``/readyz`` answering 200, the server's resident memory (psutil; with
its file-backed part, the memory-mapped index pages), ``/v1/search`` latency over HTTP in hybrid
mode (one client, SQuAD dev questions, the query encoded by the server) and its recall@5 (a
returned passage contains a gold answer), then upload and delete of one small document
through ``POST /v1/documents`` and ``DELETE /v1/documents/{id}`` (embedded by the real encoder).
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rag.bench.common import load_average, percentiles
from rag.bench.http import free_port
from rag.bench.writes import SMALL_DOCUMENT

KEY = "bench-service-key"


def _call(port: int, method: str, path: str, body: dict | None = None, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Authorization": f"Bearer {KEY}"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _memory(pid: int) -> dict[str, float]:
    """Resident MB of the server and its children, and of that the file-backed (shared) part."""
    import psutil

    process = psutil.Process(pid)
    rss = shared = 0
    for p in [process, *process.children(recursive=True)]:
        info = p.memory_info()
        rss += info.rss
        shared += getattr(info, "shared", 0)
    return {"rss_mb": round(rss / 2**20, 1), "file_backed_mb": round(shared / 2**20, 1), "anonymous_mb": round((rss - shared) / 2**20, 1)}


def bench_service(index_dir: Path, questions: list[str], answers: list[list[str]], env: dict[str, str] | None = None,
                  log_path: Path | None = None, rounds: int = 20, timeout: float = 600) -> dict:
    load_before = load_average()
    port = free_port()
    environ = {**os.environ, "RAG_RATE_LIMIT": "", "RAG_WORK_BUDGET": "", "RAG_API_KEYS": KEY, **(env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--no-build", "--index", str(index_dir), "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=environ, stdout=log, stderr=subprocess.STDOUT)
    row: dict = {"index": str(index_dir)}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} before it was ready (log: {log_path})")
            try:
                if _call(port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the server was not ready after {timeout} s (log: {log_path})")
            time.sleep(0.05)
        row["startup_to_readyz_s"] = round(time.perf_counter() - started, 2)
        row["memory_ready"] = _memory(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for q in questions[:3]:  # warm the code paths
            _call(port, "POST", "/v1/search", {"query": q, "top_k": 5, "mode": "hybrid"}, conn)
        # Cycled texts repeat every SQuAD paragraph ~500 times at 10^6, and equal texts tie in BM25,
        # so the top 5 holds copies of one or two paragraphs (``distinct_texts_in_top_5_mean``):
        # recall@1 (the best passage) is the figure that compares with the small index.
        latencies, hits, firsts, distinct = [], 0, 0, []
        for question, gold in zip(questions, answers, strict=True):
            t0 = time.perf_counter()
            status, body = _call(port, "POST", "/v1/search", {"query": question, "top_k": 5, "mode": "hybrid"}, conn)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"/v1/search answered {status}: {body[:200]!r}")
            found = json.loads(body).get("passages", [])[:5]
            hits += any(any(a in p.get("text", "") for a in gold) for p in found)
            firsts += bool(found) and any(a in found[0].get("text", "") for a in gold)
            distinct.append(len({p.get("text", "") for p in found}))
        row["search_ms"] = percentiles(latencies)
        row["hybrid_recall_at_1"] = round(firsts / len(questions), 4)
        row["hybrid_recall_at_5"] = round(hits / len(questions), 4)
        row["distinct_texts_in_top_5_mean"] = round(sum(distinct) / len(distinct), 2)
        row["memory_after_searches"] = _memory(proc.pid)
        upload, delete = [], []
        for n in range(rounds):
            doc_id = f"bench-service-{n}"
            t0 = time.perf_counter()
            status, body = _call(port, "POST", "/v1/documents", {"document_id": doc_id, "title": "Zorblax harbour notes", "text": SMALL_DOCUMENT}, conn)
            t1 = time.perf_counter()
            if status not in (200, 201):
                raise RuntimeError(f"upload answered {status}: {body[:200]!r}")
            status, body = _call(port, "DELETE", f"/v1/documents/{doc_id}", None, conn)
            t2 = time.perf_counter()
            if status not in (200, 204):
                raise RuntimeError(f"delete answered {status}: {body[:200]!r}")
            upload.append((t1 - t0) * 1000)
            delete.append((t2 - t1) * 1000)
        row["upload_ms"] = percentiles(upload)
        row["delete_ms"] = percentiles(delete)
        row["memory_after_writes"] = _memory(proc.pid)
        conn.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not isinstance(log, int):
            log.close()
    row["load_average_before"] = load_before
    row["load_average_after"] = load_average()
    return row
