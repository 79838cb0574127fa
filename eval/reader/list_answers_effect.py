"""What list answers (rag/reading/list_answers.py) change, on SQuAD dev with the gold paragraph.

    .venv/bin/python eval/reader/list_answers_effect.py --squad ../shared/data/squad-v1.1/dev-v1.1.json --out eval/reader/list_answers_effect.json
    # open mode: the index `rag eval --squad DEV --mode open --index DIR` builds (all 2,067 paragraphs)
    .venv/bin/python eval/reader/list_answers_effect.py --squad ... --index /tmp/squad-open --out eval/reader/list_answers_effect_open.json

Only questions that ask for several things can change (the rule is off for the others), so each
of those is read over its own paragraph by the served reader (Settings defaults) with list answers
off and on; EM/F1 are SQuAD's (max over the gold answers).  The whole-set delta is the subset's
summed change divided by all questions.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rag.reading import load_reader
from rag.reading.list_answers import asks_for_several
from rag.settings import Settings
from rag.text_metrics import exact_match, f1
from rag.types import Paragraph, Passage, RetrievedPassage


def _questions(path: Path) -> tuple[list[tuple[str, str, list[str]]], int]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    every = [(qa["question"], p["context"], [a["text"] for a in qa["answers"]])
             for article in data for p in article["paragraphs"] for qa in p["qas"] if qa["answers"]]
    return [q for q in every if asks_for_several(q[0])], len(every)


def _read(reader, questions) -> list[str]:
    passages = []
    for i, (_, context, _) in enumerate(questions):
        paragraph = Paragraph(f"p{i}", 0, context, 0, len(context))
        passages.append([RetrievedPassage(Passage(i, f"p{i}", 0, context, 0, 0), paragraph, 1.0, rank=0)])
    outputs = reader.read_batch([q for q, _, _ in questions], passages, top_n=1)
    return [out.spans[0].text if out.spans else "" for out in outputs]


def _ask(pipeline, questions) -> list[str]:
    results = pipeline.ask_batch([q for q, _, _ in questions])
    return [r.answers[0].text if r.answers else "" for r in results]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--index", type=Path, help="open mode: ask the service over this index instead of reading the gold paragraph")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    questions, total = _questions(args.squad)
    pipeline = None
    if args.index:
        from rag.pipeline import Pipeline

        pipeline = Pipeline(Settings(index_dir=args.index))
        reader = pipeline.reader
    else:
        reader = load_reader(Settings())
    reader.warm_up()
    result = {"dataset": str(args.squad.name), "mode": "open" if args.index else "reader", "questions": total, "list_questions": len(questions)}
    predictions = {}
    for on in (False, True):
        reader.list_answers = on
        started = time.perf_counter()
        predictions[on] = _ask(pipeline, questions) if pipeline is not None else _read(reader, questions)
        golds = [g for _, _, g in questions]
        em = sum(max(exact_match(p, g) for g in gs) for p, gs in zip(predictions[on], golds))
        f = sum(max(f1(p, g) for g in gs) for p, gs in zip(predictions[on], golds))
        result["on" if on else "off"] = {"em": round(100 * em / len(questions), 2), "f1": round(100 * f / len(questions), 2),
                                         "em_sum": em, "f1_sum": round(f, 2), "seconds": round(time.perf_counter() - started, 1)}
    result["changed"] = sum(a != b for a, b in zip(predictions[False], predictions[True]))
    result["whole_set_delta"] = {k: round(100 * (result["on"][f"{k}_sum"] - result["off"][f"{k}_sum"]) / total, 3) for k in ("em", "f1")}
    result["examples"] = [{"question": q, "off": a, "on": b, "gold": g[:3]}
                          for (q, _, g), a, b in zip(questions, predictions[False], predictions[True]) if a != b][:40]
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text[:3000])
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
