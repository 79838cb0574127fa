"""``rag eval --beir DIR --split train --tune``: grid-search hybrid fusion on training queries.

Every grid point runs the real ``Retriever`` (so the tuned numbers are the service's); query
vectors are computed once and cached, since fusion parameters do not change them.  Only the
ratio of the two weights matters to rank fusion, so ``bm25_weight`` stays 1.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embedding import Encoder
from rag.evaluation import metrics as M
from rag.evaluation.benchmarks import index_folder, beir_params, beir_run, build_beir_index
from rag.evaluation.datasets import BeirSet
from rag.pipeline import Pipeline
from rag.retrieval import Retriever

DENSE_WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
RRF_KS = (5, 10, 20, 60, 120)
# candidate_depth only matters when it exceeds the passages asked for (the retriever takes
# max(candidate_depth, top_k) from each list), so depths are compared at the service's depth:
# 20 passages, the most `rag eval` and the API show.
DEPTHS = (10, 20, 50, 100, 200)
SERVICE_TOP_K = 20

class CachedQueryEncoder(Encoder):
    """Wraps an encoder; remembers the vector of every text it has encoded."""

    def __init__(self, inner: Encoder):
        self.inner = inner
        self.name = inner.name
        self._cache: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing, batch_size=batch_size, show_progress=False), strict=True):
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dimension), dtype=np.float32)


def tune_fusion(pipeline: Pipeline, beir: BeirSet, *, index_dir: Path | None = None,
                dense_weights: Sequence[float] = DENSE_WEIGHTS, rrf_ks: Sequence[int] = RRF_KS,
                depths: Sequence[int] = DEPTHS) -> dict:
    """Stage 1: weights x rrf_k at full depth (nDCG@10, recall@100, mrr@10), best first.
    Stage 2: candidate_depth at the best weights, with 20 passages per query (nDCG@10, mrr@10)."""
    with index_folder(index_dir) as folder:
        pipeline, back, _ = build_beir_index(pipeline, beir, Path(folder))
        retriever = Retriever(CachedQueryEncoder(pipeline.encoder))

        def measure(mode: str, **params) -> dict:
            run, _ = beir_run(pipeline, beir, back, beir_params(pipeline, mode, **params), retriever=retriever, show_progress=False)
            return M.beir_metrics(beir.qrels, run)

        started = time.perf_counter()
        single = [{"mode": mode, **measure(mode)} for mode in ("bm25", "dense")]
        grid = [
            {"dense_weight": w, "rrf_k": k, **measure("hybrid", bm25_weight=1.0, dense_weight=w, rrf_k=k)}
            for w, k in itertools.product(dense_weights, rrf_ks)
        ]
        grid.sort(key=lambda r: (-r["ndcg@10"], -r["recall@100"]))
        best = grid[0]
        depth_rows = [
            {"candidate_depth": d, "top_k": SERVICE_TOP_K,
             **measure("hybrid", bm25_weight=1.0, dense_weight=best["dense_weight"], rrf_k=best["rrf_k"], candidate_depth=d, top_k=SERVICE_TOP_K)}
            for d in depths
        ]
        for row in depth_rows:
            row.pop("recall@100")  # meaningless with 20 passages
        return {
            "split": beir.split,
            "queries": len(beir.queries),
            "single": single,
            "best": {"bm25_weight": 1.0, "dense_weight": best["dense_weight"], "rrf_k": best["rrf_k"],
                     "candidate_depth": max(depth_rows, key=lambda r: (r["ndcg@10"], -r["candidate_depth"]))["candidate_depth"]},
            "weights_grid": grid,
            "depth_grid": depth_rows,
            "seconds": round(time.perf_counter() - started, 1),
        }
