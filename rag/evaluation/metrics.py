"""Aggregate per-question records into the reported metrics.

QA metrics use SQuAD's official normalisation and definitions (``rag.text_metrics``): EM and F1 are
0-100 over all questions, an abstention on an unanswerable question scoring 100.  Retrieval and
BEIR metrics are computed by ir-measures (pytrec_eval underneath), averaged over every question
(a question with nothing relevant retrieved scores 0, never drops out of the mean).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import ir_measures
import numpy as np
from ir_measures import RR, R, Success, nDCG

from rag.evaluation.runner import CATEGORIES, Record

RECALL_KS = (1, 5, 20)
CURVE_KS = tuple(range(1, 21))
_MISSING = "__no_relevant_passage__"


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)


def _r4(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def qa_metrics(records: Sequence[Record]) -> dict:
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    return {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "em": _pct(_mean(r.em for r in records)),
        "f1": _pct(_mean(r.f1 for r in records)),
        "has_answer_em": _pct(_mean(r.em for r in answerable)),
        "has_answer_f1": _pct(_mean(r.f1 for r in answerable)),
        "no_answer_accuracy": _pct(_mean(float(r.abstained) for r in unanswerable)),
        "answered": sum(not r.abstained for r in records),
        # The best candidate of every question, never abstaining (reading-comprehension view).
        "em_no_threshold": _pct(_mean(r.candidate_em for r in records)),
        "f1_no_threshold": _pct(_mean(r.candidate_f1 for r in records)),
    }


def threshold_sweep(records: Sequence[Record]) -> dict:
    """Best EM/F1 over all thresholds (answer iff score >= t), like SQuAD 2.0's best_f1."""
    n = len(records)
    if n == 0:
        return {}
    # Abstaining everywhere: unanswerable questions score 1.
    base = float(sum(not r.answerable for r in records))
    with_candidate = sorted((r for r in records if r.candidate and r.score is not None), key=lambda r: -r.score)
    out = {}
    for key, attr in (("f1", "candidate_f1"), ("em", "candidate_em")):
        best, best_t, current = base, float("inf"), base
        i = 0
        while i < len(with_candidate):
            score = with_candidate[i].score
            while i < len(with_candidate) and with_candidate[i].score == score:
                r = with_candidate[i]
                current += getattr(r, attr) - (0.0 if r.answerable else 1.0)
                i += 1
            if current > best:
                best, best_t = current, score
        out[f"best_{key}"] = round(100.0 * best / n, 2)
        out[f"best_{key}_threshold"] = None if best_t == float("inf") else round(best_t, 4)
    return out


def retrieval_metrics(records: Sequence[Record]) -> dict:
    """recall@1/5/20 and mrr@5 (0-1) over answerable questions that went through retrieval."""
    judged = [r for r in records if r.answerable and r.relevant_ranks is not None]
    keys = [f"recall@{k}" for k in RECALL_KS] + ["mrr@5"]
    if not judged:
        return dict.fromkeys(keys)
    measures = [Success @ k for k in RECALL_KS] + [RR @ 5]
    qrels, run = {}, {}
    for i, r in enumerate(judged):
        qid = f"q{i}"
        qrels[qid] = {f"r{rank}": 1 for rank in r.relevant_ranks} or {_MISSING: 1}
        run[qid] = {f"r{rank}": float(RECALL_KS[-1] + 1 - rank) for rank in range(1, RECALL_KS[-1] + 1)}
    values = _per_query_means(measures, qrels, run)
    out = {f"recall@{k}": _r4(values[Success @ k]) for k in RECALL_KS}
    out["mrr@5"] = _r4(values[RR @ 5])
    return out


def paragraph_recall(records: Sequence[Record]) -> dict:
    """SQuAD open mode: the question's own paragraph among the top k (stricter than answer match)."""
    judged = [r for r in records if r.relevant_ranks is not None and r.answerable]
    if not judged:
        return {}
    return {
        f"paragraph_recall@{k}": _r4(_mean(float(r.paragraph_rank is not None and r.paragraph_rank <= k) for r in judged))
        for k in RECALL_KS
    }


def recall_curve(records: Sequence[Record]) -> dict[int, float]:
    judged = [r for r in records if r.answerable and r.relevant_ranks is not None]
    if not judged:
        return {}
    return {k: float(np.mean([r.first_rank is not None and r.first_rank <= k for r in judged])) for k in CURVE_KS}


def citation_accuracy(records: Sequence[Record]) -> float | None:
    """Share of answers to answerable questions whose cited paragraph holds the gold evidence
    (or, without evidence, a gold answer); abstentions have no citation and are not counted."""
    return _r4(_mean(float(r.citation_correct) for r in records if r.citation_correct is not None))


def latency_metrics(records: Sequence[Record]) -> dict:
    return latency_metrics_from([r.latency_ms for r in records])


def latency_metrics_from(values: Sequence[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p95_ms": None}
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2)}


def category_counts(records: Sequence[Record]) -> dict[str, int]:
    counts = Counter(r.category for r in records)
    return {c: counts.get(c, 0) for c in CATEGORIES}


def summarize(records: Sequence[Record], *, retrieval: bool, citations: bool) -> dict:
    out = qa_metrics(records)
    out.update(threshold_sweep(records))
    # Keys that do not apply in a mode (retrieval in reader mode) are present, as null.
    out.update(retrieval_metrics(records) if retrieval else dict.fromkeys([f"recall@{k}" for k in RECALL_KS] + ["mrr@5"]))
    if retrieval and any(r.paragraph_rank is not None for r in records):
        out.update(paragraph_recall(records))
    out["citation_accuracy"] = citation_accuracy(records) if citations else None
    out.update(latency_metrics(records))
    out["categories"] = category_counts(records)
    return out


def _per_query_means(measures, qrels: dict, run: dict) -> dict:
    """Mean of each measure over every query in ``qrels`` (0 for queries missing from ``run``)."""
    totals = {m: 0.0 for m in measures}
    for metric in ir_measures.iter_calc(measures, qrels, run):
        totals[metric.measure] += metric.value
    return {m: totals[m] / len(qrels) for m in measures}


BEIR_MEASURES = (nDCG @ 10, R @ 100, RR @ 10)


def beir_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict:
    """ndcg@10, recall@100, mrr@10 (0-1) over every judged query."""
    values = _per_query_means(list(BEIR_MEASURES), qrels, _fill(qrels, run))
    return {
        "ndcg@10": _r4(values[nDCG @ 10]),
        "recall@100": _r4(values[R @ 100]),
        "mrr@10": _r4(values[RR @ 10]),
        "queries": len(qrels),
    }


def _fill(qrels: dict, run: dict) -> dict:
    return {q: run.get(q) or {_MISSING: 0.0} for q in qrels}


def beir_per_query(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    names = {nDCG @ 10: "ndcg@10", R @ 100: "recall@100", RR @ 10: "mrr@10"}
    out: dict[str, dict[str, float]] = {q: dict.fromkeys(names.values(), 0.0) for q in qrels}
    for metric in ir_measures.iter_calc(list(BEIR_MEASURES), qrels, _fill(qrels, run)):
        out[metric.query_id][names[metric.measure]] = round(metric.value, 4)
    return out


BEIR_CURVE_KS = (1, 2, 3, 5, 10, 20, 30, 50, 75, 100)


def beir_recall_curve(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[int, float]:
    measures = [R @ k for k in BEIR_CURVE_KS]
    values = _per_query_means(measures, qrels, _fill(qrels, run))
    return {k: values[R @ k] for k in BEIR_CURVE_KS}
