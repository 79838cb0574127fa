"""How search latency, recall and memory grow with corpus size (10^3 ... 10^6 passages).

Vectors only (the ANN part): synthetic passage vectors drawn around the real SQuAD paragraph
embeddings (rag/bench/data.py), real SQuAD questions as queries.  For each size the FAISS
index that ``auto`` picks is built, saved, and re-opened memory-mapped as the service opens
it; single queries are timed at the service's candidate depth (50); recall@10 is measured
against exact search; memory is the index file size and what the process holds after queries.

Full retrieval path (sizes up to ``text_max``): SQuAD paragraph texts cycled to the size, with
the same synthetic vectors, BM25 over the texts, and hybrid search through ``Retriever``.
"""
from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.bench.common import load_average, percentiles, timed
from rag.bench.data import SyntheticCorpus, exact_top_k, recall_at_k
from rag.store.faiss_store import FaissConfig, FaissStore

SERVICE_DEPTH = 50  # Settings.candidate_depth


def _memory() -> tuple[float, float]:
    """(resident MB, of which file-backed and shared MB) of this process."""
    import psutil

    info = psutil.Process().memory_info()
    return info.rss / 2**20, getattr(info, "shared", 0) / 2**20


def bench_vectors(synthetic: SyntheticCorpus, queries: np.ndarray, size: int, config: FaissConfig,
                  timing_queries: int = 200, exact_baseline: bool = True) -> dict:
    load_before = load_average()
    vectors = synthetic.vectors(size)
    truth = exact_top_k(vectors, queries, 10)
    store = FaissStore(config)
    started = time.perf_counter()
    store.build(vectors)
    build_s = time.perf_counter() - started
    row: dict = {"passages": size, "index": store.kind, "build_s": round(build_s, 2),
                 "build_vectors_per_s": round(size / build_s, 1) if build_s else None, "describe": store.describe()}
    flat_ms = None
    if exact_baseline and store.kind != "flat":
        flat = FaissStore(FaissConfig(kind="flat"))
        flat.build(vectors)
        flat_ms = percentiles(timed(lambda q: flat.search(q, SERVICE_DEPTH), list(queries[: min(timing_queries, 100)])))
        del flat
    with tempfile.TemporaryDirectory() as tmp:
        store.save(Path(tmp))
        row["index_file_mb"] = round((Path(tmp) / "faiss.index").stat().st_size / 2**20, 1)
        del store, vectors
        gc.collect()
        rss0, shared0 = _memory()
        loaded = FaissStore.load(Path(tmp), mmap=True)
        rss1, shared1 = _memory()
        found = loaded.search(queries, 10)[1]
        row["recall_at_10"] = round(recall_at_k(found, truth, 10), 4)
        row["search_ms"] = percentiles(timed(lambda q: loaded.search(q, SERVICE_DEPTH), list(queries[:timing_queries])))
        rss2, shared2 = _memory()
        row["memory_mb"] = {
            "after_mmap_load": round(rss1 - rss0, 1),
            "after_queries": round(rss2 - rss0, 1),
            "of_which_file_backed": round(shared2 - shared0, 1),
            "heap": round((rss2 - shared2) - (rss0 - shared0), 1),
        }
        loaded = None  # frees the index (a del would leave the lambda above a dangling name)
    row["exact_search_ms"] = flat_ms or (row["search_ms"] if row["index"] == "flat" else None)
    row["load_average_before"] = load_before
    row["load_average_after"] = load_average()
    gc.collect()
    return row


def bench_text(sample, synthetic: SyntheticCorpus, encoder, size: int, questions: list[str], timing_queries: int = 100) -> dict:
    """Hybrid search through the Retriever over ``size`` passages (texts cycled from SQuAD),
    stored as the service stores them (SQLite, tantivy BM25, one vector segment)."""
    from rag.bench.writes import build_index
    from rag.retrieval import RetrievalParams, Retriever

    load_before = load_average()
    texts = [sample.paragraphs[i % len(sample.paragraphs)] for i in range(size)]
    titles = [sample.titles[i % len(sample.titles)] for i in range(size)]
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        started = time.perf_counter()
        _, index = build_index(Path(tmp) / "index", texts, titles, synthetic.vectors(size), period=len(sample.paragraphs))
        build_s = time.perf_counter() - started
        retriever = Retriever(encoder)
        params = RetrievalParams()
        items = [questions[i % len(questions)] for i in range(timing_queries)]
        query_vectors = encoder.encode(items, show_progress=False)
        bm25 = percentiles(timed(lambda q: index.lexical.search(q, SERVICE_DEPTH), items))
        hybrid = percentiles(timed(lambda i: retriever.search_one(index, items[i], query_vectors[i], params), list(range(len(items)))))
        kind = index.dense.describe().get("index", "flat")
    return {"passages": size, "index": kind, "build_s_without_embedding": round(build_s, 2),
            "bm25_ms": bm25, "hybrid_without_encoding_ms": hybrid,
            "load_average_before": load_before, "load_average_after": load_average()}
