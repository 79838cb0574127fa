"""How deep should the reader read?  Issue 19, requirement 5.  A measurement, not a test.

    .venv/bin/python eval/reader/read_depth.py [--ks 3 4 5] [--out eval/reader/read_depth.json]
    RAG_READER=/path/to/reader .venv/bin/python eval/reader/read_depth.py     # another reader folder

For eval/realdocs/gold.jsonl (index /tmp/realdocs-index, built from eval/realdocs/files when
missing) and eval/seed_gold.jsonl (index /tmp/seed-index, built from corpus/ when missing):

* where the first passage holding the gold evidence ranks (1, 2, 3, 4, 5, 6-20, not in the top
  20), over the answerable questions: retrieval does not depend on how many passages are read;
* for each reader depth k (``RAG_READER_TOP_K``): answerable F1, unanswerable questions
  answered, answerable questions abstained on, outcome categories, and reader latency (p50/p95
  of the answers' ``timings_ms["read"]``, one question per call as the service answers them);
* the questions whose F1 changes between the smallest and the largest k.

Questions go through ``rag.evaluation.runner.run_open`` (what ``rag eval`` runs) with
``--batch-size 1``.  For every question the depths are asked back to back, in an order that
rotates from question to question, so that load from other processes on shared cores hits
every depth alike.  Everything else comes from the environment (``RAG_*``) as in the service.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rag.evaluation import metrics as M
from rag.evaluation.gold import load_gold
from rag.evaluation.runner import Record, run_open
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETS = {  # name: (gold file, default index, folder indexed when the index is missing)
    "realdocs": (ROOT / "eval/realdocs/gold.jsonl", Path("/tmp/realdocs-index"), ROOT / "eval/realdocs/files"),
    "seed": (ROOT / "eval/seed_gold.jsonl", Path("/tmp/seed-index"), ROOT / "corpus"),
}
RANK_BUCKETS = ("1", "2", "3", "4", "5", "6-20", "not in top 20")


def rank_bucket(record: Record) -> str:
    rank = record.first_rank
    if rank is None:
        return "not in top 20"
    return str(rank) if rank <= 5 else "6-20"


def rank_distribution(records: list[Record]) -> dict:
    answerable = [r for r in records if r.answerable]
    counts = {b: 0 for b in RANK_BUCKETS}
    for r in answerable:
        counts[rank_bucket(r)] += 1
    n = len(answerable)
    return {
        "answerable": n,
        "counts": counts,
        "share": {b: round(c / n, 4) for b, c in counts.items()} if n else {},
        "rank_4_or_5": counts["4"] + counts["5"],
    }


def open_pipeline(index: Path, corpus: Path, shared: Pipeline | None) -> Pipeline:
    settings = Settings(index_dir=index)
    pipeline = Pipeline(settings, encoder=shared.encoder if shared else None, reader=shared.reader if shared else None)
    if shared is None:
        pipeline.encoder.warm_up()
        pipeline.reader.warm_up()
    pipeline.models_ready = True
    if not (index / "store.sqlite").exists():
        print(f"building {index} from {corpus}", file=sys.stderr)
        pipeline.index_paths([corpus])
    pipeline.reload()
    return pipeline


def ask_at(pipeline: Pipeline, base: Settings, k: int, question, reads: list[float]) -> Record:
    """One question through run_open with reader depth k; its read milliseconds go to ``reads``."""
    pipeline.settings = base.model_copy(update={"reader_top_k": k})
    ask_batch = pipeline.ask_batch

    def recording(questions, *args, **kwargs):
        results = ask_batch(questions, *args, **kwargs)
        reads.extend(r.timings_ms["read"] for r in results)
        return results

    pipeline.ask_batch = recording  # type: ignore[method-assign]
    try:
        records, _ = run_open(pipeline, [question], batch_size=1, show_progress=False)
    finally:
        del pipeline.ask_batch
        pipeline.settings = base
    return records[0]


def summarize(records: list[Record], reads: list[float]) -> dict:
    m = M.summarize(records, retrieval=True, citations=True)
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    return {
        "f1": m["f1"], "em": m["em"],
        "answerable_f1": m["has_answer_f1"], "answerable_em": m["has_answer_em"],
        "unanswerable_answered": sum(not r.abstained for r in unanswerable), "unanswerable": len(unanswerable),
        "answerable_abstained": sum(r.abstained for r in answerable),
        "wrongly_abstained_evidence_read": m["categories"]["wrong_abstention"],
        "reader_saw_evidence": sum(bool(r.reader_saw_gold) for r in answerable),
        "citation_accuracy": m["citation_accuracy"],
        "categories": m["categories"],
        "read_ms_p50": round(float(np.percentile(reads, 50)), 1),
        "read_ms_p95": round(float(np.percentile(reads, 95)), 1),
        "read_ms_mean": round(float(np.mean(reads)), 1),
        "total_ms_p50": m["p50_ms"], "total_ms_p95": m["p95_ms"],
    }


def changes(low: list[Record], high: list[Record]) -> list[dict]:
    out = []
    for a, b in zip(low, high, strict=True):
        if abs(a.f1 - b.f1) > 1e-9 or a.abstained != b.abstained:
            out.append({"id": a.id, "question": a.question, "first_rank": a.first_rank,
                        "low": {"prediction": a.prediction, "candidate": a.candidate, "score": a.score, "f1": round(a.f1, 3)},
                        "high": {"prediction": b.prediction, "candidate": b.candidate, "score": b.score, "f1": round(b.f1, 3)}})
    return out


def measure(name: str, gold: Path, pipeline: Pipeline, ks: list[int]) -> dict:
    questions = load_gold(gold)
    base = pipeline.settings
    for k in ks:  # warm every depth's shapes once before timing
        ask_at(pipeline, base, k, questions[0], [])
    records: dict[int, list[Record]] = {k: [] for k in ks}
    reads: dict[int, list[float]] = {k: [] for k in ks}
    started = time.perf_counter()
    for i, question in enumerate(questions):
        for k in ks[i % len(ks):] + ks[: i % len(ks)]:
            records[k].append(ask_at(pipeline, base, k, question, reads[k]))
    print(f"{name}: {len(questions)} questions x {len(ks)} depths in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    lo, hi = min(ks), max(ks)
    return {
        "gold": str(gold.relative_to(ROOT)),
        "index": str(base.index_dir),
        "threshold": pipeline.threshold,
        "evidence_rank": rank_distribution(records[lo]),
        "by_reader_top_k": {str(k): summarize(records[k], reads[k]) for k in ks},
        f"changed_{lo}_to_{hi}": changes(records[lo], records[hi]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 4, 5], help="reader depths to compare")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--realdocs-index", type=Path, default=SETS["realdocs"][1])
    parser.add_argument("--seed-index", type=Path, default=SETS["seed"][1])
    parser.add_argument("--out", type=Path, default=ROOT / "eval/reader/read_depth.json")
    args = parser.parse_args()
    indexes = {"realdocs": args.realdocs_index, "seed": args.seed_index}
    from rag.evaluation.command import run_context

    result: dict = {"ks": args.ks, **run_context(), "command": "python eval/reader/read_depth.py " + " ".join(sys.argv[1:]), "sets": {}}
    shared = None
    for name in args.sets:
        gold, _, corpus = SETS[name]
        pipeline = open_pipeline(indexes[name], corpus, shared)
        shared = shared or pipeline
        result["reader"] = pipeline.reader.name
        result["sets"][name] = measure(name, gold, pipeline, sorted(args.ks))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, data in result["sets"].items():
        dist = data["evidence_rank"]
        print(f"{name}: evidence rank {dist['counts']} of {dist['answerable']} answerable")
        for k, s in data["by_reader_top_k"].items():
            print(f"  k={k}: answerable F1 {s['answerable_f1']}, F1 {s['f1']}, unanswerable answered {s['unanswerable_answered']} of "
                  f"{s['unanswerable']}, answerable abstained {s['answerable_abstained']}, read ms p50 {s['read_ms_p50']} p95 {s['read_ms_p95']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
