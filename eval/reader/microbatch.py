"""Does micro-batching concurrent /v1/ask requests help on this machine?  A benchmark, not a test.

    .venv/bin/python eval/reader/microbatch.py --index /tmp/seed-index --out eval/reader/microbatch.json

Starts the real app (default settings: ONNX Runtime reader and encoder, rate limit off) in a child
process twice per round, with ``rag.pipeline.MICRO_BATCH`` off and on, and drives it with
``rag.bench.http.load_test`` (closed loop, keep-alive connections) at 1 and 8 concurrent clients
over the seed gold questions.  Rounds alternate the two settings so that load from other
processes on shared cores hits both alike.  Then it checks that every answer is identical with
and without micro-batching (texts, offsets, scores rounded as served, supporting citations).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rag.bench.http import free_port, load_test, request
from rag.host import cpu_model, usable_cores

SERVER = """
import sys, uvicorn
import rag.pipeline
rag.pipeline.MICRO_BATCH = sys.argv[1] == "1"
from rag.api.app import create_app
from rag.settings import Settings
uvicorn.run(create_app(Settings(index_dir=sys.argv[2])), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


def start(index: Path, micro: bool):
    port = free_port()
    env = {**os.environ, "RAG_RATE_LIMIT": "", "RAG_LOG_JSON": "false"}
    log = open(f"/tmp/microbatch-server-{port}.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-c", SERVER, "1" if micro else "0", str(index), str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if request(port, "GET", "/readyz")[0] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"server not ready (log: {log.name})")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): robust to other load on shared cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answers(port: int, questions: list[str]) -> list:
    out = []
    for q in questions:
        status, body = request(port, "POST", "/v1/ask", {"question": q})
        data = json.loads(body)
        out.append([data.get("answers"), {k: v for k, v in (data.get("no_answer") or {}).items()}])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--gold", type=Path, default=Path("eval/seed_gold.jsonl"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--requests", type=int, default=160)
    ap.add_argument("--out", type=Path, default=Path("eval/reader/microbatch.json"))
    args = ap.parse_args()
    questions = [json.loads(line)["question"] for line in args.gold.read_text().splitlines() if line.strip()]
    bodies = [{"question": q} for q in questions]
    runs, served = [], {}
    for rnd in range(args.rounds):
        for micro in ((False, True) if rnd % 2 == 0 else (True, False)):
            proc, port = start(args.index, micro)
            try:
                for body in bodies[:8]:  # warm the code paths
                    request(port, "POST", "/v1/ask", body)
                for level in (1, 8):
                    cpu0 = cpu_seconds(proc.pid)
                    result = load_test(port, "/v1/ask", bodies, level, args.requests if level == 8 else args.requests // 2)
                    result["server_cpu_ms_per_request"] = round(1000 * (cpu_seconds(proc.pid) - cpu0) / max(1, result["ok"]), 1)
                    runs.append({"round": rnd, "micro_batch": micro, **result})
                    print(json.dumps({k: runs[-1][k] for k in ("round", "micro_batch", "concurrency", "requests_per_s",
                                                              "server_cpu_ms_per_request", "latency_ms")}), flush=True)
                if rnd == 0:
                    served[micro] = answers(port, questions)
            finally:
                proc.terminate()
                proc.wait(30)
    same = [a == b for a, b in zip(served[False], served[True])]
    summary = {}
    for micro in (False, True):
        for level in (1, 8):
            rows = [r for r in runs if r["micro_batch"] == micro and r["concurrency"] == level]
            rps = sorted(r["requests_per_s"] for r in rows)
            summary[f"{'micro' if micro else 'plain'}_c{level}"] = {
                "median_requests_per_s": rps[len(rps) // 2] if rps else None,
                "server_cpu_ms_per_request": [r["server_cpu_ms_per_request"] for r in rows],
                "requests_per_s": [r["requests_per_s"] for r in rows],
                "p50_ms": [r["latency_ms"]["p50"] for r in rows],
                "p95_ms": [r["latency_ms"]["p95"] for r in rows],
            }
    report = {"host": {"cpu": cpu_model(), "usable_cores": usable_cores(), "load_average_start": os.getloadavg()}, "questions": len(questions), "identical_answers": f"{sum(same)} of {len(same)}",
              "differences": [q for q, s in zip(questions, same) if not s], "summary": summary, "runs": runs}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("identical_answers", "summary")}, indent=2))


if __name__ == "__main__":
    main()
