"""Index build throughput and peak memory: SQuAD v1.1 dev paragraphs through ``IndexBuilder``.

Runs in a child process (``python -m rag.bench.build``) so its peak resident memory is the
build's own, model loading included.  Every SQuAD paragraph is one document, as in open
retrieval over SQuAD; the report splits the time into model loading, embedding, and the rest
(chunking, BM25, the vector index, writing the version).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.bench.common import load_average, peak_rss_mb
from rag.bench.data import load_squad, squad_documents
from rag.embedding import Encoder, load_encoder
from rag.settings import Settings


class TimedEncoder(Encoder):
    """Wraps an encoder and adds up the seconds spent encoding."""

    def __init__(self, inner: Encoder):
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self.texts = 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        started = time.perf_counter()
        out = self.inner.encode(texts, batch_size=batch_size, show_progress=False)
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.inner.encode_query(text)


def run_build(squad: Path, index_dir: Path, model: str, limit: int | None = None, backend: str = "faiss") -> dict:
    from rag.store.builder import IndexBuilder

    load_before = load_average()
    sample = load_squad(squad)
    documents = squad_documents(sample, limit)
    settings = Settings(index_dir=index_dir, embedding_model=model, vector_backend=backend)
    started = time.perf_counter()
    encoder = TimedEncoder(load_encoder(settings))
    encoder.warm_up()
    loaded = time.perf_counter()
    index, report = IndexBuilder(settings, encoder).apply(index_dir, upserts=documents)
    finished = time.perf_counter()
    build_s = finished - loaded
    return {
        "model": model,
        "backend": backend,
        "documents": len(documents),
        "passages": report.passages,
        "model_load_s": round(loaded - started, 2),
        "build_s": round(build_s, 2),
        "embed_s": round(encoder.seconds, 2),
        "other_s": round(build_s - encoder.seconds, 2),
        "paragraphs_per_s": round(len(documents) / build_s, 1),
        "passages_per_s": round(report.passages / build_s, 1),
        "embed_passages_per_s": round(encoder.texts / encoder.seconds, 1) if encoder.seconds else None,
        "peak_rss_mb": peak_rss_mb(),
        "dense": index.manifest["dense"],
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def bench_build(squad: Path, model: str, limit: int | None = None, index_dir: Path | None = None) -> dict:
    """Run the build in a fresh process and return its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        target = index_dir or Path(tmp) / "index"
        cmd = [sys.executable, "-m", "rag.bench.build", "--squad", str(squad), "--index", str(target), "--model", model]
        if limit:
            cmd += ["--limit", str(limit)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(run_build(args.squad, args.index, args.model, args.limit)))


if __name__ == "__main__":
    main()
