"""What one small write costs as the corpus grows (issue 13): upload and delete of one document.

The corpus is SQuAD paragraph texts cycled to the size, one passage per document, with
synthetic vectors (rag/bench/data.py) from ``SyntheticEncoder``, so only storage is timed:
chunking, the segment write, the SQLite transaction, the BM25 sync (tantivy), the reload of the
new snapshot, and compaction when the policy asks for it (run inline, so its amortised share is
in the figures).  Each size is built once with one bulk write, then ``rounds`` times: upload
one small document (3 paragraphs), delete it.  Search latency (BM25 alone and hybrid without
query encoding) is measured on the same index.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.bench.common import load_average, percentiles, timed
from rag.embedding import HashingEncoder
from rag.ingest import document_from_text
from rag.settings import Settings
from rag.types import Document

SMALL_DOCUMENT = ("Zorblax harbour notes\n\nThe zorblax beacon on the north pier is painted ultramarine blue. "
                  "It was lit for the first time in 1921.\n\nThe harbour council meets on the first Monday of the month.\n\n"
                  "Ships must signal twice before entering the inner basin at night.")
# Documents per bulk write: 10^5 one-passage documents hold ~0.5 GB of Python objects at once.
BULK_BATCH = 100_000


class SyntheticEncoder(HashingEncoder):
    """Pre-drawn vectors for the bulk build, one per document, repeated for each of its passages
    (``passages_per_document``, cycled); hashing vectors for anything after (the small writes)."""

    def __init__(self, vectors: np.ndarray, name: str = "synthetic", passages_per_document: list[int] | None = None):
        super().__init__(vectors.shape[1])
        self.name = name
        self._vectors = vectors
        self._per_document = passages_per_document or [1]
        self._next = 0  # the next document's vector

    def encode(self, texts, batch_size: int = 64, show_progress=None) -> np.ndarray:
        rows: list[int] = []
        while len(rows) < len(texts) and self._next < len(self._vectors):
            rows += [self._next] * self._per_document[self._next % len(self._per_document)]
            self._next += 1
        if len(rows) == len(texts):
            return np.asarray(self._vectors[rows], dtype=np.float32)
        return super().encode(texts, batch_size, show_progress)


def passages_per_document(texts: list[str], settings: Settings) -> list[int]:
    """How many passages each of these one-paragraph documents becomes (a long SQuAD paragraph
    becomes two), so that the synthetic vectors line up with the passages."""
    from rag.chunking import make_passages, split_paragraphs

    counts = []
    for i, text in enumerate(texts):
        paragraphs = split_paragraphs(document_from_text(text, f"d{i}"), settings.max_passage_words)
        counts.append(len(make_passages(paragraphs, settings.max_passage_words, settings.window_overlap_sentences)))
    return counts


def build_index(index_dir: Path, texts: list[str], titles: list[str], vectors: np.ndarray, model: str = "synthetic",
                period: int | None = None, batch: int = BULK_BATCH):
    """Bulk-write ``len(texts)`` one-passage documents (ids ``p0000000`` ...), ``batch`` per write,
    into flat segments, then compact them once (one IVF training at the end, not one per
    batch); ``texts`` repeat with ``period``.  Returns (builder, index) with the service's settings."""
    from rag.store import compaction
    from rag.store.builder import IndexBuilder
    from rag.store.corpus_index import CorpusIndex

    settings = Settings(index_dir=index_dir, embedding_model=model, background_compaction=False)
    encoder = SyntheticEncoder(vectors, model, passages_per_document(texts[: period or len(texts)], settings))
    # Several batches: flat segments, merged (and IVF-trained if large) once at the end; one
    # batch: its segment is built as the service would build it.
    bulk = IndexBuilder(settings.model_copy(update={"faiss_index": "flat"}) if len(texts) > batch else settings, encoder)
    index = None
    parsed: dict[int, Document] = {}  # the texts repeat: parse each once (half the build time at 10^4)

    def document(i: int) -> Document:
        j = i % (period or len(texts))
        if j not in parsed:
            parsed[j] = document_from_text(texts[i], "p", {"title": titles[i]})
        return replace(parsed[j], document_id=f"p{i:07d}")

    for start in range(0, len(texts), batch):
        documents = [document(i) for i in range(start, min(len(texts), start + batch))]
        index, _ = bulk.apply(index_dir, upserts=documents, origin="upload", previous=index)
    compaction.compact_all(index_dir, settings)
    return IndexBuilder(settings, encoder), CorpusIndex.load(index_dir, settings=settings)


def reuse_or_build(folder: Path, texts: list[str], titles: list[str], vectors, model: str, period: int):
    """The index in ``folder`` if a previous run built it completely (``built.json``), else build it
    there; returns (builder, index, bulk build seconds of the run that built it).  ``vectors``: a
    function that draws them (1.7 GB at 10^6, not drawn when the index is reused)."""
    from rag.store.builder import IndexBuilder
    from rag.store.corpus_index import CorpusIndex

    marker = folder / "built.json"
    settings = Settings(index_dir=folder, embedding_model=model, background_compaction=False)
    if marker.is_file():
        built = json.loads(marker.read_text())
        if built.get("documents") == len(texts) and built.get("model") == model:
            index = CorpusIndex.load(folder, settings=settings)
            # The bulk vectors are in the index already: hashing vectors of its dimension from here.
            encoder = SyntheticEncoder(np.zeros((0, int(index.meta["dimension"])), dtype=np.float32), model)
            return IndexBuilder(settings, encoder), index, built["bulk_build_s"]
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    builder, index = build_index(folder, texts, titles, vectors(), model, period)
    seconds = round(time.perf_counter() - started, 2)
    marker.write_text(json.dumps({"documents": len(texts), "passages": len(index), "model": model, "bulk_build_s": seconds}))
    return builder, index, seconds


def bench_writes(sample, synthetic, sizes: list[int], rounds: int = 20, questions: list[str] | None = None,
                 keep: Path | None = None, keep_from: int = 100_000, model: str = "synthetic") -> list[dict]:
    """One row per size.  The rounds alternate between the sizes (round n writes into every
    index before round n+1 starts, in a rotating order), so a burst of load from other jobs on
    the shared machine (fsync latency varied 2-6x between runs) falls on every size alike.
    Sizes from ``keep_from`` are built in ``keep/writes-<size>`` and reused on later runs."""
    from rag.store import compaction

    with tempfile.TemporaryDirectory(prefix="rag-writes-") as tmp:
        states = [_prepare(sample, synthetic, size, keep if keep is not None and size >= keep_from else Path(tmp), model)
                  for size in sizes]
        for n in range(rounds):
            for state in states[n % len(states):] + states[: n % len(states)]:
                builder, index_dir = state["builder"], state["index_dir"]
                t0 = time.perf_counter()
                state["index"], _ = builder.apply(index_dir, upserts=[document_from_text(SMALL_DOCUMENT, f"bench-{n}")], origin="upload",
                                                  previous=state["index"])
                t1 = time.perf_counter()
                state["index"], _ = builder.apply(index_dir, deletes=[f"bench-{n}"], previous=state["index"])
                t2 = time.perf_counter()
                steps = compaction.compact_all(index_dir, builder.settings)
                t3 = time.perf_counter()
                state["upload"].append((t1 - t0) * 1000)
                state["delete"].append((t2 - t1) * 1000)
                state["compact"].append(((t3 - t2) * 1000, steps))
        return [_finish(state, synthetic, questions) for state in states]


def _prepare(sample, synthetic, size: int, folder: Path, model: str) -> dict:
    period = len(sample.paragraphs)
    texts = [sample.paragraphs[i % period] for i in range(size)]
    titles = [sample.titles[i % period] for i in range(size)]
    load_before = load_average()
    builder, index, build_s = reuse_or_build(folder / f"writes-{size}", texts, titles, lambda: synthetic.vectors(size, cycled=True), model, period)
    return {"size": size, "builder": builder, "index": index, "index_dir": folder / f"writes-{size}", "build_s": build_s,
            "upload": [], "delete": [], "compact": [], "load_before": load_before}


def _finish(state: dict, synthetic, questions: list[str] | None) -> dict:
    from rag.retrieval import RetrievalParams, Retriever
    from rag.store.corpus_index import CorpusIndex

    index_dir = state["index_dir"]
    index = CorpusIndex.load(index_dir, settings=state["builder"].settings)
    row = {"passages": len(index), "documents": state["size"], "bulk_build_s": state["build_s"], "rounds": len(state["upload"]),
           "upload_ms": percentiles(state["upload"]), "delete_ms": percentiles(state["delete"]),
           "compaction_ms_per_round": percentiles([c for c, _ in state["compact"]]),
           "compaction_steps": sum(s for _, s in state["compact"]), "segments_after": len(index.dense.segments),
           "dense_index": index.dense.describe().get("index"),
           "database_mb": round(sum(p.stat().st_size for p in index_dir.glob("store.sqlite*")) / 2**20, 1),
           "lexical_mb": round(sum(p.stat().st_size for p in (index_dir / "lexical").glob("*")) / 2**20, 1)}
    if questions:
        items = [questions[i % len(questions)] for i in range(100)]
        row["bm25_ms"] = percentiles(timed(lambda q: index.lexical.search(q, 50), items))
        retriever, params = Retriever(HashingEncoder(synthetic.real.shape[1])), RetrievalParams()
        query_vectors = synthetic.vectors(len(items))
        row["hybrid_without_encoding_ms"] = percentiles(
            timed(lambda i: retriever.search_one(index, items[i], query_vectors[i], params), list(range(len(items)))))
    row["load_average_before"] = state["load_before"]
    row["load_average_after"] = load_average()
    return row
