"""What one small write costs as the corpus grows (issue 13): upload and delete of one document.

The corpus is SQuAD paragraph texts cycled to the size, one passage per document, with
synthetic vectors (rag/bench/data.py) from ``SyntheticEncoder``, so only storage is timed:
chunking, the segment write, the SQLite transaction (rows and FTS5), the reload of the new
snapshot, and compaction when the policy asks for it (run inline, so its amortised share is
in the figures).  Each size is built once with one bulk write, then ``rounds`` times: upload
one small document (3 paragraphs), delete it.  Search latency (BM25 alone and hybrid without
query encoding) is measured on the same index.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from rag.bench.common import load_average, percentiles, timed
from rag.embedding import HashingEncoder
from rag.ingest import document_from_text
from rag.settings import Settings

SMALL_DOCUMENT = ("Zorblax harbour notes\n\nThe zorblax beacon on the north pier is painted ultramarine blue. "
                  "It was lit for the first time in 1921.\n\nThe harbour council meets on the first Monday of the month.\n\n"
                  "Ships must signal twice before entering the inner basin at night.")


class SyntheticEncoder(HashingEncoder):
    """Returns pre-drawn vectors in order (bulk build), then hashing vectors (small writes)."""

    def __init__(self, vectors: np.ndarray):
        super().__init__(vectors.shape[1])
        self.name = "synthetic"
        self._vectors = vectors
        self._used = 0

    def encode(self, texts, batch_size: int = 64, show_progress=None) -> np.ndarray:
        if self._used + len(texts) <= len(self._vectors):
            out = np.asarray(self._vectors[self._used : self._used + len(texts)], dtype=np.float32)
            self._used += len(texts)
            return out
        return super().encode(texts, batch_size, show_progress)


def build_index(index_dir: Path, texts: list[str], titles: list[str], vectors: np.ndarray):
    """One bulk write of ``len(texts)`` one-passage documents; returns (pipeline-less builder, index)."""
    from rag.store.builder import IndexBuilder

    settings = Settings(index_dir=index_dir, embedding_model="synthetic", background_compaction=False)
    builder = IndexBuilder(settings, SyntheticEncoder(vectors))
    documents = [document_from_text(t, f"p{i}", {"title": titles[i]}) for i, t in enumerate(texts)]
    index, _ = builder.apply(index_dir, upserts=documents, origin="upload")
    return builder, index


def bench_writes(sample, synthetic, size: int, rounds: int = 20, questions: list[str] | None = None) -> dict:
    from rag.retrieval import RetrievalParams, Retriever
    from rag.store import compaction

    load_before = load_average()
    texts = [sample.paragraphs[i % len(sample.paragraphs)] for i in range(size)]
    titles = [sample.titles[i % len(sample.titles)] for i in range(size)]
    vectors = synthetic.vectors(size)
    with tempfile.TemporaryDirectory(prefix="rag-writes-") as tmp:
        index_dir = Path(tmp) / "index"
        started = time.perf_counter()
        builder, index = build_index(index_dir, texts, titles, vectors)
        build_s = time.perf_counter() - started
        upload, delete, compact = [], [], []
        for n in range(rounds):
            t0 = time.perf_counter()
            index, _ = builder.apply(index_dir, upserts=[document_from_text(SMALL_DOCUMENT, f"bench-{n}")], origin="upload", previous=index)
            t1 = time.perf_counter()
            index, _ = builder.apply(index_dir, deletes=[f"bench-{n}"], previous=index)
            t2 = time.perf_counter()
            steps = compaction.compact_all(index_dir, builder.settings)
            t3 = time.perf_counter()
            upload.append((t1 - t0) * 1000)
            delete.append((t2 - t1) * 1000)
            compact.append(((t3 - t2) * 1000, steps))
        from rag.store.corpus_index import CorpusIndex

        index = CorpusIndex.load(index_dir, settings=builder.settings)
        row = {"passages": size, "bulk_build_s": round(build_s, 2), "rounds": rounds,
               "upload_ms": percentiles(upload), "delete_ms": percentiles(delete),
               "compaction_ms_per_round": percentiles([c for c, _ in compact]),
               "compaction_steps": sum(s for _, s in compact), "segments_after": len(index.dense.segments),
               "database_mb": round(sum(p.stat().st_size for p in index_dir.glob("store.sqlite*")) / 2**20, 1)}
        if questions:
            items = [questions[i % len(questions)] for i in range(100)]
            row["bm25_ms"] = percentiles(timed(lambda q: index.lexical.search(q, 50), items))
            retriever, params = Retriever(HashingEncoder(vectors.shape[1])), RetrievalParams()
            query_vectors = synthetic.vectors(len(items))
            row["hybrid_without_encoding_ms"] = percentiles(
                timed(lambda i: retriever.search_one(index, items[i], query_vectors[i], params), list(range(len(items)))))
    row["load_average_before"] = load_before
    row["load_average_after"] = load_average()
    return row
