"""Shared benchmark helpers: percentiles, machine description, memory, result files."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rag.host import cpu_model, usable_cores

# Questions about the default corpus (corpus/: two articles on NATO and the Indo-Pacific).
CORPUS_QUESTIONS = [
    "Who was NATO's first Secretary General?",
    "In what year was the East-West Center established?",
    "Where could NATO establish a regional office?",
    "Which countries form the Indo-Pacific Four?",
    "What did the Washington Summit Declaration say about the Indo-Pacific?",
    "How many NATO summits has Yoon Suk-yeol attended?",
    "What has South Korea imposed on Russia?",
    "Who wrote about the Republic of Korea and the 2024 NATO summit?",
    "What slogan has the Yoon administration used for South Korea?",
    "Which anniversary did NATO commemorate in Washington?",
    "What are areas of practical cooperation between NATO and South Korea?",
    "Why do some European countries hesitate about a role in the Indo-Pacific?",
    "What threats does NATO counter from China?",
    "Who invaded South Korea during the Korean War?",
    "What is the capital of Australia?",
    "How many moons does Jupiter have?",
]


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms, dtype=np.float64)
    return {
        "n": int(len(a)),
        "mean": round(float(a.mean()), 3),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


def timed(fn, items, warmup: int = 3) -> list[float]:
    """Milliseconds of ``fn(item)`` for every item, after ``warmup`` untimed calls."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1000)
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def machine() -> dict:
    """What the numbers were measured on."""
    import psutil

    versions = {"python": platform.python_version()}
    for module in ("numpy", "faiss", "torch", "sentence_transformers", "bm25s", "fastapi", "uvicorn", "pymilvus"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - missing or versionless: leave it out
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "commit": commit,
        "load_average": load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def python() -> str:
    return sys.executable
