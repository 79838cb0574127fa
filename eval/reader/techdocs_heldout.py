"""A reader on the held-out technical documents: whole documents no training run has seen.

    python eval/reader/techdocs_heldout.py --reader rag/models/reader --out eval/reader/techdocs_heldout_before.json

The held-out split is the training run's (``--heldout-fraction``, ``--seed``: whole documents,
by the hash of their file), so the figures of any reader folder are comparable.  Reader mode
(the question's own paragraph is given), fp32 PyTorch, the folder's own calibration and threshold:
answerable EM/F1 without threshold and as served (an abstention scores 0), and the share of the
subject-swap unanswerable questions answered, overall and by question kind.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import typer

from rag.reading.qa_model import load_qa_model
from rag.reading.span import Calibration
from rag.text_metrics import best_over_golds
from rag.training import evaluation as te
from rag.training.data import is_heldout, split_heldout
from rag.training.techdocs import load_techdocs


def main(
    reader: Path = typer.Option(Path("rag/models/reader")),
    questions: Path = typer.Option(Path("/work/techdocs/questions.jsonl")),
    heldout_fraction: float = typer.Option(0.06),
    seed: int = typer.Option(13),
    out: Path = typer.Option(Path("eval/reader/techdocs_heldout.json")),
) -> None:
    from transformers import AutoTokenizer

    articles, swaps = load_techdocs(questions, unseen=lambda g: is_heldout(g, heldout_fraction, seed))
    _train, held = split_heldout(articles, heldout_fraction, seed)
    groups = {ex.group for art in held for ex in art}
    positives = [ex for art in held for ex in art]
    negatives = [n for n in swaps if n.group in groups]
    calibration = Calibration.load(reader) or Calibration()
    model = load_qa_model(str(reader)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(reader))
    cfg = {"max_seq_len": 384, "doc_stride": 128, "max_answer_tokens": 30}
    preds = te.reader_predictions(model, tokenizer, positives + negatives, cfg, "cpu", None, calibration)
    kinds: dict[str, list[float]] = defaultdict(list)
    em = f1 = served = 0.0
    for ex, (text, p, _c) in zip(positives, preds):
        e, f = best_over_golds(text, ex.golds)
        em, f1 = em + e, f1 + f
        served += f if p >= calibration.threshold else 0.0
        kinds[ex.kind].append(f)
    answered = [p >= calibration.threshold for _t, p, _c in preds[len(positives):]]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for n, a in zip(negatives, answered):
        by_kind[n.kind].append(a)
    n = max(1, len(positives))
    result = {"reader": str(reader), "threshold": calibration.threshold, "documents": len(groups), "answerable": len(positives),
              "em_no_threshold": round(100 * em / n, 2), "f1_no_threshold": round(100 * f1 / n, 2), "f1_as_served": round(100 * served / n, 2),
              "f1_no_threshold_by_kind": {k: f"{100 * sum(v) / len(v):.1f} ({len(v)} q)" for k, v in sorted(kinds.items())},
              "unanswerable": len(negatives), "unanswerable_answered_pct": round(100 * sum(answered) / max(1, len(answered)), 2),
              "unanswerable_answered_by_kind": {k: f"{sum(v)} of {len(v)}" for k, v in sorted(by_kind.items())}}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
