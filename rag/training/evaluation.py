"""Evaluation, score calibration and threshold choice for the span reader.

Metrics are the official SQuAD ones (``rag.text_metrics``).  Reader mode means the
gold paragraph is given.  SQuAD 2.0 accounting: abstaining ("") is right on an unanswerable
question, and a question is answered iff its best calibrated probability >= the threshold.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from rag.text_metrics import best_over_golds, f1, normalize_answer
from rag.reading.span import Calibration, SpanCandidate, predict_pairs, rank_candidates
from rag.reading.span_features import NAMES as FEATURE_NAMES
from rag.reading.span_features import candidate_features
from rag.training.data import BM25, QAExample

CORRECT_F1 = 0.5  # a span counts as correct when its token F1 with a gold answer is >= this


def predict(model, tokenizer, questions, contexts, cfg: dict, device: str, amp) -> list[list[SpanCandidate]]:
    return predict_pairs(
        model,
        tokenizer,
        questions,
        contexts,
        max_seq_len=cfg["max_seq_len"],
        doc_stride=cfg["doc_stride"],
        max_answer_tokens=cfg["max_answer_tokens"],
        batch_size=cfg.get("eval_batch_size", 128),
        spans_per_window=3,
        device=device,
        autocast_dtype=amp,
    )


def reader_predictions(model, tokenizer, examples: Sequence[QAExample], cfg, device, amp, calibration: Calibration):
    """Per example: (best span text, its calibrated probability, candidates)."""
    cands = predict(model, tokenizer, [e.question for e in examples], [e.context for e in examples], cfg, device, amp)
    out = []
    for ex, cs in zip(examples, cands):
        ranked = rank_candidates([cs], calibration, ex.question, [ex.context])
        if ranked:
            p, c = ranked[0]
            out.append((ex.context[c.start : c.end], p, cs))
        else:
            out.append(("", 0.0, cs))
    return out


def rescored(examples: Sequence[QAExample], preds, calibration: Calibration):
    """``reader_predictions`` again under another calibration, from the candidates already read."""
    out = []
    for ex, (_t, _p, cs) in zip(examples, preds):
        ranked = rank_candidates([cs], calibration, ex.question, [ex.context])
        out.append((ex.context[ranked[0][1].start : ranked[0][1].end], ranked[0][0], cs) if ranked else ("", 0.0, cs))
    return out


def v1_scores(examples: Sequence[QAExample], preds) -> dict[str, float]:
    """Always-answer EM/F1 (x100) over answerable examples."""
    ems, f1s = [], []
    for ex, (text, _p, _c) in zip(examples, preds):
        if not ex.golds:
            continue
        em, f = best_over_golds(text, ex.golds)
        ems.append(em)
        f1s.append(f)
    n = max(1, len(f1s))
    return {"exact": 100 * sum(ems) / n, "f1": 100 * sum(f1s) / n, "n": len(f1s)}


def v2_scores(examples: Sequence[QAExample], preds, threshold: float) -> dict[str, float]:
    """SQuAD 2.0 EM/F1, HasAns F1 and NoAns accuracy (x100) at ``threshold``."""
    ems, f1s, has, no = [], [], [], []
    for ex, (text, p, _c) in zip(examples, preds):
        answer = text if p >= threshold else ""
        em, f = best_over_golds(answer, ex.golds)
        ems.append(em)
        f1s.append(f)
        (has if ex.golds else no).append(f)
    n = max(1, len(f1s))
    return {
        "exact": 100 * sum(ems) / n,
        "f1": 100 * sum(f1s) / n,
        "has_ans_f1": 100 * sum(has) / max(1, len(has)),
        "no_ans_acc": 100 * sum(no) / max(1, len(no)),
        "threshold": threshold,
        "n": len(f1s),
        "n_has_ans": len(has),
        "n_no_ans": len(no),
    }


def best_threshold(examples: Sequence[QAExample], preds, unanswerable_share: float | None = None) -> float:
    """The threshold maximising SQuAD 2.0 F1 (the official script's sweep over scores).

    ``unanswerable_share``: weigh the examples as if that share of the questions had no answer
    (None: as they come), so a set built half and half can stand for a mostly answerable use.
    """
    n_no = sum(1 for ex in examples if not ex.golds)
    n_has = len(examples) - n_no
    gain_if_answered = []
    base = 0.0
    for ex, (text, p, _c) in zip(examples, preds):
        weight = 1.0
        if unanswerable_share is not None and n_no and n_has:
            weight = unanswerable_share / n_no if not ex.golds else (1 - unanswerable_share) / n_has
        answered = weight * best_over_golds(text, ex.golds)[1]
        abstained = weight * best_over_golds("", ex.golds)[1]
        base += abstained
        gain_if_answered.append((p, answered - abstained))
    gain_if_answered.sort(key=lambda x: -x[0])
    best, best_t, run = base, 1.0 + 1e-9, base
    for i, (p, g) in enumerate(gain_if_answered):
        run += g
        nxt = gain_if_answered[i + 1][0] if i + 1 < len(gain_if_answered) else -1.0
        if run > best and p > nxt:
            best, best_t = run, p
    return float(best_t)


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Newton/IRLS for logistic regression with an intercept (last column of ``x`` is 1)."""
    w = np.zeros(x.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -40, 40)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def calibration_rows(question_sets, per_passage: int = 2, features: bool = False):
    """Feature rows (margin, gap, log1p rank[, span features], 1) and labels from
    [(golds, contexts, candidates per passage, question)]."""
    rows, labels = [], []
    for golds, contexts, cands, question in question_sets:
        flat = [c for cs in cands for c in cs]
        if not flat:
            continue
        best = max(c.score for c in flat)
        kept = [cs[:per_passage] for cs in cands]
        extra = candidate_features(question, contexts, [[(c.start, c.end) for c in cs] for cs in kept]) if features else None
        for rank, cs in enumerate(kept):
            for i, c in enumerate(cs):
                text = contexts[rank][c.start : c.end]
                ok = bool(golds) and max(f1(text, g) for g in golds) >= CORRECT_F1
                rows.append([c.margin, c.score - best, float(np.log1p(rank)), *(extra[rank][i] if extra else ()), 1.0])
                labels.append(float(ok))
    return np.array(rows, dtype=np.float64), np.array(labels, dtype=np.float64)


def stratified(examples: Sequence[QAExample], limit: int, rng: random.Random) -> list[QAExample]:
    """At most ``limit`` examples (all when 0), half from technical documents and half from prose
    when both have enough: the threshold must fit questions over manuals as well as over prose."""
    tech = [e for e in examples if e.source == "techdocs"]
    prose = [e for e in examples if e.source != "techdocs"]
    rng.shuffle(tech)
    rng.shuffle(prose)
    if not limit:
        return tech + prose
    n_tech = min(len(tech), max(limit // 2, limit - len(prose)))
    return tech[:n_tech] + prose[: limit - n_tech]


def retrieval_simulation(examples: Sequence[QAExample], model, tokenizer, cfg, device, amp, k: int = 5, seed: int = 0,
                         unanswerable_kinds: Sequence[str] = (), limit: int = 0):
    """Each held-out question read over its BM25 top-``k`` held-out paragraphs (in rank order).

    Answerable questions, plus the unanswerable ones whose ``kind`` is in ``unanswerable_kinds``
    (rule-edited questions: over retrieved passages they look like real unanswerable use);
    ``limit`` > 0 keeps at most that many of each.
    """
    pool = list(dict.fromkeys(e.context for e in examples))
    bm25 = BM25(pool)
    rng = random.Random(seed)
    pos = [e for e in examples if e.golds]
    neg = [e for e in examples if not e.golds and e.kind in unanswerable_kinds]
    qs = stratified(pos, limit, rng) + stratified(neg, limit, rng)
    questions, contexts, owners = [], [], []
    for qi, ex in enumerate(qs):
        for i in bm25.top(ex.question, k):
            questions.append(ex.question)
            contexts.append(pool[i])
            owners.append(qi)
    cands = predict(model, tokenizer, questions, contexts, cfg, device, amp)
    sets = [(ex.golds, [], [], ex.question) for ex in qs]
    for owner, ctx, cs in zip(owners, contexts, cands):
        sets[owner][1].append(ctx)
        sets[owner][2].append(cs)
    return sets


def fit_calibration(reader_sets, retrieval_sets, features: bool = False) -> tuple[Calibration, dict]:
    """Logistic calibration of the span score; with ``features`` also the span features
    (``rag.reading.span_features.NAMES``) beside margin, gap and rank."""
    x1, y1 = calibration_rows(reader_sets, features=features)
    x2, y2 = calibration_rows(retrieval_sets, features=features)
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    w = _fit_logistic(x, y)
    named = dict(zip((f"w_{n}" for n in FEATURE_NAMES), map(float, w[3:-1]))) if features else {}
    cal = Calibration(w_margin=float(w[0]), w_gap=float(w[1]), w_rank=float(w[2]), bias=float(w[-1]), **named)
    p = 1 / (1 + np.exp(-np.clip(x @ w, -40, 40)))
    # Expected calibration error over 10 equal-width bins.
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    info = {"rows": int(len(y)), "positive_rate": float(y.mean()), "ece_10bins": float(ece),
            "log_loss": float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))}
    return cal, info


def retrieval_metrics(sets, calibration: Calibration, threshold: float) -> dict[str, float]:
    """Open-book answer quality over the simulated retrieval: answered share and its F1."""
    answered, f1s, all_f1 = 0, [], []
    for golds, contexts, cands, question in sets:
        ranked = rank_candidates(cands, calibration, question, contexts)
        if not ranked or ranked[0][0] < threshold:
            all_f1.append(0.0)
            continue
        p, c = ranked[0]
        rank = next(i for i, cs in enumerate(cands) if c in cs)
        f = max(f1(contexts[rank][c.start : c.end], g) for g in golds)
        answered += 1
        f1s.append(f)
        all_f1.append(f)
    n = max(1, len(sets))
    return {"questions": len(sets), "answered_pct": 100 * answered / n,
            "f1_when_answered": 100 * sum(f1s) / max(1, len(f1s)), "f1_all": 100 * sum(all_f1) / n}


def served_answers(contexts: Sequence[str], cands: Sequence[Sequence[SpanCandidate]], calibration: Calibration,
                   how: str = "noisy_or", question: str = "") -> list[tuple[str, float, list[int]]]:
    """The service's answers for one question over its passages, best first: (text, score, ranks).

    As ``rag.reading.answers.select_answers`` scores them (without the alternative filters): the
    same normalised text in several passages is one answer whose score aggregates the best
    probability in each passage (``how``: "max" or "noisy_or").
    """
    from rag.reading.answers import aggregate

    rank_of = {id(c): r for r, cs in enumerate(cands) for c in cs}
    groups: dict[str, list] = {}
    for p, c in rank_candidates(cands, calibration, question, contexts):
        r = rank_of[id(c)]
        text = contexts[r][c.start : c.end]
        key = normalize_answer(text)
        if not key:
            continue
        g = groups.setdefault(key, [text, {}])
        g[1].setdefault(r, p)
    out = [(text, aggregate(list(per.values()), how), sorted(per)) for text, per in groups.values()]
    out.sort(key=lambda t: -t[1])
    return out


def retrieval_predictions(sets, calibration: Calibration, how: str = "noisy_or"):
    """(best text, score, None) per simulated question, for ``v2_scores`` / ``best_threshold``."""
    preds = []
    for _golds, contexts, cands, question in sets:
        answers = served_answers(contexts, cands, calibration, how, question)
        preds.append((answers[0][0], answers[0][1], None) if answers else ("", 0.0, None))
    return preds


def ece(scores: Sequence[float], correct: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width bins."""
    p, y = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float)
    if not len(p):
        return 0.0
    b = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[b == i].mean() - y[b == i].mean()) * (b == i).mean() for i in range(bins) if (b == i).any()))
