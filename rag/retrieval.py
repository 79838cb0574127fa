"""Stage 5: passages for a query by BM25, dense similarity, or both fused by reciprocal rank.

Hybrid fusion (Cormack et al. 2009): fused(p) = sum over retrievers of weight / (rrf_k + rank),
ranks starting at 1, over each retriever's top ``candidate_depth``.  Every returned passage also
carries its raw BM25 and cosine scores (computed for all candidates, not only those a retriever
ranked), so callers can see why it was chosen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.embedding import Encoder
from rag.errors import InvalidRequest
from rag.settings import RetrievalMode, Settings
from rag.store.protocol import Index
from rag.types import PassageScores, RetrievedPassage

MODES = tuple(mode.value for mode in RetrievalMode)
FETCH_SPARE = 4


@dataclass(frozen=True)
class RetrievalParams:
    # Defaults are the service's (Settings), so a caller that builds params directly (rag bench)
    # retrieves exactly as the service does.
    mode: RetrievalMode = RetrievalMode.HYBRID
    top_k: int = Settings.model_fields["top_k"].default
    candidate_depth: int = Settings.model_fields["candidate_depth"].default
    rrf_k: int = Settings.model_fields["rrf_k"].default
    bm25_weight: float = Settings.model_fields["bm25_weight"].default
    dense_weight: float = Settings.model_fields["dense_weight"].default

    @classmethod
    def from_settings(cls, settings: Settings, mode: str | None = None, top_k: int | None = None) -> RetrievalParams:
        mode = mode or settings.retrieval_mode
        if mode not in MODES:
            raise InvalidRequest(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        return cls(
            mode=RetrievalMode(mode),
            top_k=top_k or settings.top_k,
            candidate_depth=settings.candidate_depth,
            rrf_k=settings.rrf_k,
            bm25_weight=settings.bm25_weight,
            dense_weight=settings.dense_weight,
        )


class Retriever:
    def __init__(self, encoder: Encoder):
        self.encoder = encoder

    def search_batch(self, index: Index, queries: list[str], params: RetrievalParams) -> list[list[RetrievedPassage]]:
        """One encoder call for all queries (batching is ~10x faster per query than one by one)."""
        if len(index) == 0:
            return [[] for _ in queries]
        vectors = None
        if params.mode in ("dense", "hybrid"):
            vectors = self.encoder.encode(queries, show_progress=False) if len(queries) > 1 else self.encoder.encode_query(queries[0])[None, :]
        return [
            self.search_one(index, query, vectors[i] if vectors is not None else None, params)
            for i, query in enumerate(queries)
        ]

    def search_one(self, index: Index, query: str, query_vector: np.ndarray | None, params: RetrievalParams) -> list[RetrievedPassage]:
        depth = max(params.candidate_depth, params.top_k)
        ranked: list[tuple[list[int], float]] = []  # (passage ids best first, weight)
        bm25: dict[int, float] = {}
        if params.mode in ("bm25", "hybrid"):
            lexical_ids, lexical_scores = index.lexical.search(query, depth)
            bm25 = dict(zip(lexical_ids.tolist(), lexical_scores.tolist(), strict=True))
            ranked.append((lexical_ids.tolist(), params.bm25_weight))
        if query_vector is not None:
            _, dense_ids = index.dense.search(query_vector[None, :], depth)
            ranked.append((dense_ids[0][dense_ids[0] >= 0].tolist(), params.dense_weight))

        fused: dict[int, float] = {}
        for ranked_ids, weight in ranked:
            for rank, pid in enumerate(ranked_ids, start=1):
                fused[pid] = fused.get(pid, 0.0) + weight / (params.rrf_k + rank)
        if params.mode != "hybrid":
            # single retriever: report its raw score as the ranking score
            fused = {pid: 0.0 for pid in ranked[0][0]}
        if not fused:
            return []

        candidates = list(fused)
        if params.mode == "hybrid":  # raw BM25 of the dense-only candidates too
            missing = [pid for pid in candidates if pid not in bm25]
            bm25.update(index.lexical.scores_of(query, missing))
        dense_scores = index.vectors_of(candidates) @ query_vector if query_vector is not None else None
        ranked_all = []
        for i, pid in enumerate(candidates):
            passage_scores = PassageScores(
                bm25=bm25.get(pid, 0.0) if params.mode != "dense" else None,
                dense=float(dense_scores[i]) if dense_scores is not None else None,
                fused=fused[pid],
            )
            primary = {"bm25": passage_scores.bm25, "dense": passage_scores.dense, "hybrid": passage_scores.fused}[params.mode]
            ranked_all.append((-float(primary or 0.0), pid, passage_scores))
        ranked_all.sort(key=lambda r: (r[0], r[1]))
        # Only the returned passages' texts are read (one query); a few spare ones stand in for
        # rows a compaction purged since this snapshot was taken.
        shown = ranked_all[: params.top_k + FETCH_SPARE]
        rows = index.fetch([pid for _, pid, _ in shown])
        results = [RetrievedPassage(*rows[pid], -neg, kept) for neg, pid, kept in shown if pid in rows][: params.top_k]
        for rank, result in enumerate(results, start=1):
            result.rank = rank
        return results
