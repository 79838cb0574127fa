"""In-process latency: Pipeline.search / Pipeline.ask one question at a time, and batched.

Also times the stages of one search (query encoding, BM25, vector search) so the report can
say where the milliseconds go.
"""
from __future__ import annotations

import time
from pathlib import Path

from rag.bench.common import load_average, percentiles, rss_mb, timed
from rag.settings import Settings


def _cycle(questions: list[str], n: int) -> list[str]:
    return [questions[i % len(questions)] for i in range(n)]


def bench_in_process(index_dir: Path, questions: list[str], n: int = 200, model: str | None = None,
                     reader: str | None = None, batch_size: int = 32) -> dict:
    from rag.pipeline import Pipeline

    overrides = {"index_dir": index_dir}
    if model:
        overrides["embedding_model"] = model
    if reader:
        overrides["reader"] = reader
    settings = Settings(**overrides)
    pipeline = Pipeline(settings)
    started = time.perf_counter()
    pipeline.warm_up()
    warm_s = time.perf_counter() - started
    index = pipeline.index
    items = _cycle(questions, n)
    load_before = load_average()
    depth = max(settings.candidate_depth, settings.top_k)
    stages = {
        "encode_query": percentiles(timed(pipeline.encoder.encode_query, items)),
        "bm25_scores": percentiles(timed(lambda q: index.lexical.search(q, depth), items)),
    }
    vectors = pipeline.encoder.encode(items[: min(n, 64)], show_progress=False)
    stages["vector_search"] = percentiles(timed(lambda i: index.dense.search(vectors[i], depth), list(range(len(vectors)))))
    search = percentiles(timed(pipeline.search, items))
    ask = percentiles(timed(pipeline.ask, items))
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    started = time.perf_counter()
    for batch in batches:
        pipeline.ask_batch(batch)
    batch_qps = len(items) / (time.perf_counter() - started)
    return {
        "index_dir": str(index_dir),
        "passages": len(index),
        "embedding_model": pipeline.encoder.name,
        "reader": type(pipeline.reader).__name__,
        "dense": index.manifest.get("dense", {}),
        "warm_up_s": round(warm_s, 2),
        "stages_ms": stages,
        "search_ms": search,
        "ask_ms": ask,
        "ask_batch": {"batch_size": batch_size, "questions_per_s": round(batch_qps, 1)},
        "rss_mb": rss_mb(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
