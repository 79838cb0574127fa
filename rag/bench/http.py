"""HTTP latency and throughput: `rag serve` in a child process, clients on 127.0.0.1.

The server is the real one (`python -m rag.cli serve --no-build`), started with the rate
limit switched off (``RAG_RATE_LIMIT=""``: the default 300/minute per address would refuse a
load test) and otherwise default settings.  Each client is a thread with one keep-alive
connection that sends its next request as soon as the previous answer arrives (closed loop), so
"concurrency 8" means at most 8 requests in flight.  Client and server share the machine's
cores, which the report states.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.bench.common import load_average, percentiles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    pid: int
    ready_s: float  # from process start to /readyz answering 200


@contextmanager
def serving(index_dir: Path, env: dict[str, str] | None = None, log_path: Path | None = None, timeout: float = 300):
    """Start `rag serve` on a free loopback port; yields a Server once /readyz says ready.

    /readyz is polled every 50 ms, so ``ready_s`` (the start-up the service bench reports) is
    within 50 ms of the truth."""
    port = free_port()
    environ = {**os.environ, "RAG_RATE_LIMIT": "", "RAG_WORK_BUDGET": "", **(env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--no-build", "--index", str(index_dir), "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} before it was ready (log: {log_path})")
            try:
                status, _ = request(port, "GET", "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the server was not ready after {timeout} s (log: {log_path})")
            time.sleep(0.05)
        yield Server(port, proc.pid, round(time.perf_counter() - started, 2))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


@contextmanager
def running_server(index_dir: Path, env: dict[str, str] | None = None, log_path: Path | None = None, timeout: float = 300):
    """``serving`` for callers that need only the port."""
    with serving(index_dir, env, log_path, timeout) as server:
        yield server.port


def _server_timing(header: str) -> dict[str, float]:
    """``retrieve;dur=9.1, read;dur=31.0, app;dur=41.0`` -> {"retrieve": 9.1, ...}."""
    out = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        try:
            out[name] = float(rest)
        except ValueError:
            continue
    return out


def request(port: int, method: str, path: str, body: dict | None = None, conn: http.client.HTTPConnection | None = None,
            stages: dict[str, float] | None = None, headers: dict[str, str] | None = None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**({"Content-Type": "application/json"} if payload else {}), **(headers or {})}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        body_bytes = response.read()
        if stages is not None:
            stages.update(_server_timing(response.getheader("Server-Timing") or ""))
        return response.status, body_bytes
    finally:
        if own:
            conn.close()


def load_test(port: int, path: str, bodies: list[dict], concurrency: int, total: int) -> dict:
    """``total`` POSTs of ``bodies`` (cycled) with at most ``concurrency`` in flight."""
    lock = threading.Lock()
    counter = iter(range(total))
    latencies: list[float] = []
    server: dict[str, list[float]] = {}
    errors: dict[int, int] = {}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                stages: dict[str, float] = {}
                try:
                    status, _ = request(port, "POST", path, bodies[i % len(bodies)], conn, stages)
                except (OSError, http.client.HTTPException):
                    status = 599
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                        for name, ms in stages.items():
                            server.setdefault(name, []).append(ms)
                    else:
                        errors[status] = errors.get(status, 0) + 1
        finally:
            conn.close()

    load_before = load_average()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "path": path,
        "concurrency": concurrency,
        "requests": total,
        "ok": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms": percentiles(latencies),
        # The server's own Server-Timing header: stage times and "app" (time inside the app).
        "server_timing_p50_ms": {name: percentiles(v)["p50"] for name, v in server.items()},
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def bench_http(index_dir: Path, questions: list[str], concurrency: list[int], requests_per_level: int,
               env: dict[str, str] | None = None, log_path: Path | None = None, batch_size: int = 32) -> dict:
    results = []
    with running_server(index_dir, env, log_path) as port:
        searches = [{"query": q} for q in questions]
        asks = [{"question": q} for q in questions]
        for body in (searches[0], asks[0]):  # warm the code paths
            request(port, "POST", "/v1/search" if "query" in body else "/v1/ask", body)
        for level in concurrency:
            total = requests_per_level if level == 1 else max(requests_per_level, 4 * level)
            results.append(load_test(port, "/v1/search", searches, level, total))
            results.append(load_test(port, "/v1/ask", asks, level, total))
        batch = {"questions": [questions[i % len(questions)] for i in range(batch_size)]}
        batched = load_test(port, "/v1/ask:batch", [batch], 1, max(3, requests_per_level // batch_size))
        batched["questions_per_s"] = round(batched["requests_per_s"] * batch_size, 1)
        batched["batch_size"] = batch_size
        results.append(batched)
    return {"levels": results, "env": {k: v for k, v in (env or {}).items()}}
