"""Quality floor: the seed gold set through the real pipeline must not get worse.

The floors are the values measured for each reader (eval/RESULTS.md, rows "seed gold") minus a
small margin for numerical noise between machines.  A reader this file does not know (a new
model) must at least clear the heuristic reader's floor.  Raise a floor when quality improves.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from rag.evaluation.benchmarks import evaluate_gold
from rag.evaluation.gold import load_gold

SEED_GOLD = Path(__file__).resolve().parent.parent / "eval" / "seed_gold.jsonl"

# Measured with all-MiniLM-L6-v2, hybrid retrieval, the reader's default threshold, batches of 32.
FLOORS = {
    # Re-measured after issue 10's ingestion (canonical text, block paragraphs, title only on
    # passages of 25+ words): retrieval now also finds the 2024-summit paragraph for the
    # false-premise "Where will the next NATO summit be held?", which the reader answers
    # (no-answer accuracy 15/16 -> 14/16; eval/RESULTS.md, seed gold).
    # Re-measured for the second reader weights (issue 12: trained on all of SQuAD train with
    # rule-edited unanswerables, threshold for 20% unanswerable real use, int8 by default):
    # F1 77.94 -> 81.53, still 2 of 16 unanswerable answered; citation accuracy 0.967 -> 0.952
    # because it answers 6 more questions (eval/RESULTS.md, seed gold).
    "span": {
        "em": 78.65, "f1": 81.53, "has_answer_f1": 80.22, "no_answer_accuracy": 87.5,
        "recall@1": 0.8493, "recall@5": 0.9863, "recall@20": 1.0, "mrr@5": 0.905, "citation_accuracy": 0.9524,
    },
    "heuristic": {
        "em": 30.34, "f1": 37.51, "has_answer_f1": 27.92, "no_answer_accuracy": 81.25,
        "recall@1": 0.8356, "recall@5": 1.0, "recall@20": 1.0, "mrr@5": 0.9057, "citation_accuracy": 0.975,
    },
}
# Allowed drop: 2 points on 0-100 metrics, 0.02 on 0-1 metrics.
MARGIN_PCT, MARGIN_FRACTION = 2.0, 0.02


@pytest.mark.e2e
def test_seed_gold_quality_floor(real_pipeline):
    questions = load_gold(SEED_GOLD)
    evaluation = evaluate_gold(real_pipeline, questions, batch_size=32, source=str(SEED_GOLD))
    metrics = evaluation.metrics
    assert metrics["questions"] == len(questions)
    floor = FLOORS.get(real_pipeline.reader.name, FLOORS["heuristic"])
    below = []
    for key, minimum in floor.items():
        margin = MARGIN_FRACTION if minimum <= 1.0 and key not in ("em", "f1", "has_answer_f1", "no_answer_accuracy") else MARGIN_PCT
        if metrics[key] is None or metrics[key] < minimum - margin:
            below.append(f"{key} {metrics[key]} < floor {minimum} - {margin}")
    assert not below, f"reader {real_pipeline.reader.name}: " + "; ".join(below)
