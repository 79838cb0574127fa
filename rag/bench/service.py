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
import time
from pathlib import Path

from rag.bench.common import load_average, percentiles
from rag.bench.http import request, serving
from rag.bench.writes import SMALL_DOCUMENT

KEY = "bench-service-key"


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
    auth = {"Authorization": f"Bearer {KEY}"}
    row: dict = {"index": str(index_dir)}
    with serving(index_dir, {"RAG_API_KEYS": KEY, **(env or {})}, log_path, timeout) as server:
        port = server.port
        row["startup_to_readyz_s"] = server.ready_s
        row["memory_ready"] = _memory(server.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for q in questions[:3]:  # warm the code paths
            request(port, "POST", "/v1/search", {"query": q, "top_k": 5, "mode": "hybrid"}, conn, headers=auth)
        # Cycled texts repeat every SQuAD paragraph ~500 times at 10^6, and equal texts tie in BM25,
        # so the top 5 holds copies of one or two paragraphs (``distinct_texts_in_top_5_mean``):
        # recall@1 (the best passage) is the figure that compares with the small index.
        latencies, hits, firsts, distinct = [], 0, 0, []
        for question, gold in zip(questions, answers, strict=True):
            t0 = time.perf_counter()
            status, body = request(port, "POST", "/v1/search", {"query": question, "top_k": 5, "mode": "hybrid"}, conn, headers=auth)
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
        row["memory_after_searches"] = _memory(server.pid)
        upload, delete = [], []
        for n in range(rounds):
            doc_id = f"bench-service-{n}"
            t0 = time.perf_counter()
            status, body = request(port, "POST", "/v1/documents", {"document_id": doc_id, "title": "Zorblax harbour notes", "text": SMALL_DOCUMENT}, conn, headers=auth)
            t1 = time.perf_counter()
            if status not in (200, 201):
                raise RuntimeError(f"upload answered {status}: {body[:200]!r}")
            status, body = request(port, "DELETE", f"/v1/documents/{doc_id}", None, conn, headers=auth)
            t2 = time.perf_counter()
            if status not in (200, 204):
                raise RuntimeError(f"delete answered {status}: {body[:200]!r}")
            upload.append((t1 - t0) * 1000)
            delete.append((t2 - t1) * 1000)
        row["upload_ms"] = percentiles(upload)
        row["delete_ms"] = percentiles(delete)
        row["memory_after_writes"] = _memory(server.pid)
        conn.close()
    row["load_average_before"] = load_before
    row["load_average_after"] = load_average()
    return row
