"""Writes and searches on Milvus Lite (``rag bench --section writes --backend milvus``).

The same corpus as the embedded writes section (rag/bench/writes.py: SQuAD paragraph texts
cycled to the size, one document each, synthetic vectors around real SQuAD embeddings), written
through ``MilvusWriter`` into a Milvus Lite file, so only storage is timed: chunking, BM25
tokens, the upserts and deletes by primary key, the version bump and the reload of the index
handle.  Each size is built with bulk writes, then ``rounds`` times: upload one small document
(3 paragraphs), delete it.  Search: BM25 inside Milvus, dense inside Milvus, and the service's
hybrid path without query encoding (both searches, the fusion, raw scores of the candidates and
the fetch of the returned passages' texts and paragraphs).
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
# Documents per bulk write: bounds the Python objects of one write (10^4 documents ~50 MB).
BULK_BATCH = 10_000


class PooledEncoder(HashingEncoder):
    """Synthetic vectors (cycled from a pool) while ``bulk`` is set, hashing vectors after."""

    def __init__(self, pool: np.ndarray):
        super().__init__(pool.shape[1])
        self.name = "synthetic"
        self.pool = pool
        self.used = 0
        self.bulk = True

    def encode(self, texts, batch_size: int = 64, show_progress=None) -> np.ndarray:
        if not self.bulk:
            return super().encode(texts, batch_size, show_progress)
        rows = (self.used + np.arange(len(texts))) % len(self.pool)
        self.used += len(texts)
        return np.asarray(self.pool[rows], dtype=np.float32)


def bench_milvus_writes(sample, synthetic, size: int, rounds: int = 20, questions: list[str] | None = None) -> dict:
    from rag.retrieval import RetrievalParams, Retriever
    from rag.store.milvus_index import MilvusIndex
    from rag.store.milvus_writer import MilvusWriter

    load_before = load_average()
    vectors = synthetic.vectors(size)
    with tempfile.TemporaryDirectory(prefix="rag-milvus-writes-") as tmp:
        settings = Settings(index_dir=Path(tmp) / "no-index", embedding_model="synthetic", vector_backend="milvus",
                            milvus_uri=str(Path(tmp) / "milvus.db"), milvus_collection="bench")
        encoder = PooledEncoder(vectors)
        writer = MilvusWriter(settings, encoder)
        started = time.perf_counter()
        for start in range(0, size, BULK_BATCH):
            documents = [document_from_text(sample.paragraphs[i % len(sample.paragraphs)], f"p{i:07d}",
                                            {"title": sample.titles[i % len(sample.titles)]}) for i in range(start, min(size, start + BULK_BATCH))]
            writer.apply(settings.index_dir, upserts=documents, origin="upload")
        build_s = time.perf_counter() - started
        encoder.bulk = False
        upload, delete = [], []
        for n in range(rounds):
            t0 = time.perf_counter()
            writer.apply(settings.index_dir, upserts=[document_from_text(SMALL_DOCUMENT, f"bench-{n}")], origin="upload")
            t1 = time.perf_counter()
            writer.apply(settings.index_dir, deletes=[f"bench-{n}"])
            t2 = time.perf_counter()
            upload.append((t1 - t0) * 1000)
            delete.append((t2 - t1) * 1000)
        index = MilvusIndex.load(settings)
        row = {"backend": "milvus-lite", "passages": len(index), "documents": size, "bulk_build_s": round(build_s, 2), "rounds": rounds,
               "upload_ms": percentiles(upload), "delete_ms": percentiles(delete),
               "milvus_file_mb": round(sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20, 1)}
        if questions:
            items = [questions[i % len(questions)] for i in range(100)]
            query_vectors = synthetic.vectors(len(items))
            row["bm25_ms"] = percentiles(timed(lambda q: index.lexical.search(q, 50), items))
            row["dense_ms"] = percentiles(timed(lambda i: index.dense.search(query_vectors[i], 50), list(range(len(items)))))
            retriever, params = Retriever(HashingEncoder(vectors.shape[1])), RetrievalParams()
            row["hybrid_without_encoding_ms"] = percentiles(
                timed(lambda i: retriever.search_one(index, items[i], query_vectors[i], params), list(range(len(items)))))  # type: ignore[arg-type]
    row["load_average_before"] = load_before
    row["load_average_after"] = load_average()
    return row


def section_milvus_writes(folder: Path, squad: Path, model: str, sizes: list[int], cache: Path, command: str) -> None:
    """``rag bench --section writes --backend milvus``: one row per size into writes_milvus.json."""
    import typer

    from rag.bench.common import machine, write_json
    from rag.bench.data import squad_with_synthetic
    from rag.extras import require

    require("milvus", "rag bench --backend milvus", ("pymilvus", "milvus_lite"))
    typer.echo(f"writes on Milvus Lite: sizes {sizes} ...")
    sample, synthetic = squad_with_synthetic(squad, model, cache)
    rows: list[dict] = []
    result = {"machine": machine(), "command": command, "rows": rows,
              "description": ("Milvus Lite (the whole index in Milvus: rag/store/milvus_index.py, milvus_writer.py).  One SQuAD "
                              "paragraph per document cycled to the size, synthetic vectors around real SQuAD paragraph "
                              "embeddings; 20 rounds of: upload one 3-paragraph document, delete it.  Storage only, no encoder.")}
    for size in sizes:
        row = bench_milvus_writes(sample, synthetic, size, questions=sample.questions[:200])
        rows.append(row)
        write_json(folder / "writes_milvus.json", result)
        typer.echo(f"  {size:,} documents: upload p50 {row['upload_ms']['p50']} ms, delete p50 {row['delete_ms']['p50']} ms, "
                   f"hybrid p50 {row.get('hybrid_without_encoding_ms', {}).get('p50')} ms")
