"""/v1/ask with the fp32 and the int8 span reader, measured as CPU time per request.

Why CPU time: on a shared 2-core machine (other jobs, load average 3-7 during this project's
sessions) wall-clock requests/s swing by 2x between runs, while the server process's own CPU
seconds per request barely move; 2 cores / CPU seconds per request is the throughput that 2
idle cores can reach.  Both variants are run in alternation, ``--rounds`` times each, on the
default corpus with the real encoder, 8 closed-loop clients on one keep-alive connection each
(as `rag bench --section http`), so load changes hit both alike.

    python eval/bench/reader_int8.py --index /tmp/seed-index --out eval/bench/reader_int8.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import psutil

from rag.bench.http import load_test, request, running_server

QUESTIONS = [
    "Who was NATO's first Secretary General?",
    "Where was the 2024 NATO summit held?",
    "When was NATO founded?",
    "Which countries did South Korea's president meet at the summit?",
    "What did Lord Ismay say the alliance was created to do?",
    "Who attended the NATO summit from the Indo-Pacific?",
]


def _server_process(port: int) -> psutil.Process:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"no process listens on {port}")


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def run_level(port: int, clients: int, requests: int) -> dict:
    """rag bench's closed-loop load test, plus the server process's CPU time per request."""
    server = _server_process(port)
    cpu0 = _cpu_seconds(server)
    row = load_test(port, "/v1/ask", [{"question": q} for q in QUESTIONS], clients, requests)
    if row["ok"] != requests:
        raise RuntimeError(f"/v1/ask failed: {row['errors']}")
    row["server_cpu_ms_per_request"] = round(1000 * (_cpu_seconds(server) - cpu0) / requests, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index of the default corpus (rag index corpus --index DIR)")
    parser.add_argument("--out", type=Path, default=Path("eval/bench/reader_int8.json"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for round_ in range(args.rounds):
        for quantize in ("none", "int8"):
            with running_server(args.index, env={"RAG_READER_QUANTIZE": quantize}) as port:
                request(port, "POST", "/v1/ask", {"question": QUESTIONS[0]})  # first call pays lazy set-up
                for clients in (1, 8):
                    row = {"reader_quantize": quantize, "round": round_, **run_level(port, clients, args.requests)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary = {}
    for quantize in ("none", "int8"):
        for clients in (1, 8):
            mine = [r for r in rows if r["reader_quantize"] == quantize and r["concurrency"] == clients]
            cpu = statistics.median(r["server_cpu_ms_per_request"] for r in mine)
            summary[f"{quantize}/{clients}"] = {
                "server_cpu_ms_per_request": cpu, "idle_2_core_requests_per_s": round(2000 / cpu, 1),
                "measured_requests_per_s": statistics.median(r["requests_per_s"] for r in mine),
                "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in mine),
                "p95_ms": statistics.median(r["latency_ms"]["p95"] for r in mine)}
    args.out.write_text(json.dumps({"rows": rows, "summary": summary, "cores": os.cpu_count()}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
