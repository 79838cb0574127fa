"""Answer aggregation and the alternatives ratio, measured on held-out training data (not SQuAD dev).

    .venv/bin/python eval/reader/alternatives.py --data-dir ../shared/data --out eval/reader/alternatives.json

The held-out slice of `rag train-reader` (seed 13, 4% of article groups, all SQuAD v1.1 train
included, so most of it is SQuAD articles the shipped reader never saw) is read the way the
service reads it: each question over its BM25 top-3 held-out paragraphs, answerable questions
and as many rule-edited unanswerable ones (training_negatives.py, question swaps).  Then:

* aggregation ("max" vs "noisy_or" over the passages quoting the same answer): calibration error
  (10 bins) of the top answer's score against "it is correct" (token F1 >= 0.5), and SQuAD 2.0
  F1 at the best threshold and at the reader's threshold;
* alternatives: every answer after the best that is distinct (no overlap, no containment) is a
  candidate; it is "shown" iff score >= max(threshold, ratio * best score) (and well-formed, in
  the filtered variant); the ratio maximising the F1 of "shown" against "correct" is chosen.
"""
from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from types import SimpleNamespace

from rag.evaluation.squad_metrics import f1
from rag.reading.answers import select_answers, well_formed
from rag.reading.span import SpanReader, predict_pairs, rank_candidates
from rag.training.data import BM25, flatten, load_training_articles, make_negatives, split_heldout
from rag.training.evaluation import best_threshold, ece, v2_scores
from rag.training.negatives import HARD_KINDS
from rag.types import AnswerSpan, Paragraph, Passage, RetrievedPassage


def correct(text: str, golds) -> bool:
    return bool(golds) and max(f1(text, g) for g in golds) >= 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--reader", default=None, help="model folder (default: the shipped reader)")
    ap.add_argument("--limit", type=int, default=800, help="answerable and unanswerable questions each")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("eval/reader/alternatives.json"))
    args = ap.parse_args()
    t0 = time.time()
    _, held = split_heldout(load_training_articles(args.data_dir), 0.04, 13)
    positives = flatten(held)
    negatives = [n for n in make_negatives(held, 1.0, 13 + 7, hard=0.6) if n.kind in (*HARD_KINDS, "question_swap")]
    import random

    rng = random.Random(0)
    rng.shuffle(positives)
    rng.shuffle(negatives)
    questions = positives[: args.limit] + negatives[: args.limit]
    pool = list(dict.fromkeys(e.context for e in flatten(held)))
    bm25 = BM25(pool)
    reader = SpanReader(args.reader) if args.reader else SpanReader(runtime="auto")
    reader.warm_up()
    sets = []
    for ex in questions:
        rps = []
        for rank, i in enumerate(bm25.top(ex.question, args.k)):
            para = Paragraph(f"p{i}", 0, pool[i], 0, len(pool[i]))
            rps.append(RetrievedPassage(Passage(i, f"p{i}", 0, pool[i], 0, 0), para, 1.0, rank=rank))
        sets.append((ex, rps))
    pairs = [(ex.question, rp) for ex, rps in sets for rp in rps]
    cache = Path(f"/tmp/alternatives-{Path(reader.model_name).name}-{args.limit}-{args.k}.pkl")
    if cache.is_file():
        cands = pickle.loads(cache.read_bytes())
    else:
        cands = _predict(reader, pairs)
        cache.write_bytes(pickle.dumps(cands))
    read_s = time.time() - t0
    per_q, pos = [], 0
    for ex, rps in sets:
        mine = cands[pos : pos + len(rps)]
        pos += len(rps)
        rank_of = {id(c): r for r, cs in enumerate(mine) for c in cs}
        ranked = [AnswerSpan(rps[rank_of[id(c)]], c.start, c.end, p) for p, c in rank_candidates(mine, reader.calibration)]
        per_q.append((ex, ranked))
    report = analyse(per_q, reader, args, read_s)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "alternatives"} | {"alt": {k: v for k, v in report["alternatives"].items() if k != "sweep"}}, indent=1))


def _predict(reader, pairs):
    return predict_pairs(reader._model, reader._tokenizer, [q for q, _ in pairs], [rp.passage.text for _, rp in pairs],
                         max_seq_len=reader.max_seq_len, doc_stride=reader.doc_stride, max_answer_tokens=reader.max_answer_tokens,
                         batch_size=32, spans_per_window=3)


def analyse(per_q, reader, args, read_s: float) -> dict:
    t0 = time.time()
    threshold = reader.default_threshold
    report = {"reader": reader.model_name, "threshold": threshold, "questions": len(per_q), "k": args.k, "read_seconds": round(read_s, 1),
              "aggregation": {}, "alternatives": {}}
    for how in ("max", "noisy_or"):
        answers = [(ex, select_answers(ranked, 10, ratio=0.0, how=how)) for ex, ranked in per_q]
        preds = [((a[0].text, a[0].score, None) if a else ("", 0.0, None)) for _, a in answers]
        gold = [SimpleNamespace(golds=ex.golds) for ex, _ in answers]
        tops = [(a[0].score, correct(a[0].text, ex.golds)) for ex, a in answers if a]
        best_t = best_threshold(gold, preds)
        report["aggregation"][how] = {
            "ece_top_answer": round(ece([s for s, _ in tops], [c for _, c in tops]), 4),
            "v2_at_reader_threshold": v2_scores(gold, preds, threshold),
            "v2_at_best_threshold": v2_scores(gold, preds, best_t),
            "answers_with_support": sum(bool(a and a[0].supporting) for _, a in answers),
        }
    how = report["aggregation"]["noisy_or"]["v2_at_best_threshold"]["f1"] >= report["aggregation"]["max"]["v2_at_best_threshold"]["f1"]
    how = "noisy_or" if how else "max"
    report["aggregation_chosen"] = how
    # Alternatives (answerable questions only: on unanswerable ones no alternative is correct).
    alts = []
    for ex, ranked in per_q:
        if not ex.golds:
            continue
        answers = select_answers(ranked, 10, ratio=0.0, how=how, form=False)
        if not answers or answers[0].score < threshold:
            continue
        best = answers[0]
        for a in answers[1:]:
            ok_form = well_formed(a.retrieved.paragraph.text, a.start, a.end)
            alts.append((a.score / best.score, a.score, ok_form, correct(a.text, ex.golds), correct(best.text, ex.golds), a.text))
    report["alternatives"]["candidates"] = len(alts)
    report["alternatives"]["well_formed_share"] = round(sum(a[2] for a in alts) / max(1, len(alts)), 3)
    report["alternatives"]["correct_rate_well_formed"] = round(sum(a[3] for a in alts if a[2]) / max(1, sum(a[2] for a in alts)), 3)
    report["alternatives"]["correct_rate_not_well_formed"] = round(sum(a[3] for a in alts if not a[2]) / max(1, sum(not a[2] for a in alts)), 3)
    report["alternatives"]["not_well_formed_examples"] = [a[5] for a in alts if not a[2]][:20]
    sweep = []
    for filtered in (False, True):
        for r in [x / 20 for x in range(0, 20)]:
            shown = [a for a in alts if a[1] >= threshold and a[0] >= r and (a[2] or not filtered)]
            tp = sum(a[3] for a in shown)
            positives_all = sum(a[3] for a in alts)
            prec = tp / max(1, len(shown))
            rec = tp / max(1, positives_all)
            sweep.append({"ratio": r, "well_formed_filter": filtered, "shown": len(shown), "correct_shown": tp,
                          "precision": round(prec, 3), "recall": round(rec, 3), "f1": round(2 * prec * rec / max(1e-9, prec + rec), 3),
                          "rescues": sum(a[3] and not a[4] for a in shown)})
    report["alternatives"]["sweep"] = sweep
    best = max((s for s in sweep if s["well_formed_filter"]), key=lambda s: (s["f1"], s["ratio"]))
    report["alternatives"]["chosen"] = best
    report["analysis_seconds"] = round(time.time() - t0, 1)
    return report


if __name__ == "__main__":
    main()
