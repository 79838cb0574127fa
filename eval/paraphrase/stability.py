"""Paraphrase stability: do wordings of one question get the same decision and the same answer?

    .venv/bin/python eval/paraphrase/stability.py [--index DIR ...] [--out eval/paraphrase/stability.json]
    RAG_READER=/path/to/reader .venv/bin/python eval/paraphrase/stability.py   # another reader folder

Reads eval/paraphrase/pairs.jsonl (one group per line: ``wordings`` of one question, its
``answers`` -- [] when the documents do not answer it -- ``doc`` and ``evidence``).  Each group
is asked against the index (of those given with --index) that holds its document; by default
/tmp/seed-index (corpus/) and /tmp/realdocs-index (eval/realdocs/files), each built when
missing.  First it checks the set: every answerable group's first answer occurs verbatim in
its document's text and its evidence in one of the document's paragraphs (--check-only stops
there).  Then every wording goes through ``rag.evaluation.runner.run_open`` (what ``rag eval``
runs: ``Pipeline.ask_batch``, the service's threshold, one question per call) and it reports:

* paraphrase-stability rate: share of groups whose wordings all agree on answering or abstaining;
* answer agreement: share of groups whose wordings all give the same normalised answer
  (SQuAD normalisation, rag.text_metrics; an abstention is the empty answer);
* mean F1 per wording (rag.text_metrics.best_over_golds; abstaining on an unanswerable
  wording scores 1), over all wordings and by position in the group;
* the groups that flip, with every wording's answer and score.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rag.evaluation.gold import GoldQuestion, contains, doc_matches
from rag.evaluation.runner import Record, run_open
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.text_metrics import normalize_answer

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_INDEXES = {Path("/tmp/seed-index"): ROOT / "corpus", Path("/tmp/realdocs-index"): ROOT / "eval/realdocs/files"}


@dataclass
class Group:
    id: str
    doc: str
    wordings: list[str]
    answers: list[str]
    evidence: str | None = None
    kind: str = ""
    note: str = ""
    records: list[Record] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def questions(self) -> list[GoldQuestion]:
        return [GoldQuestion(f"{self.id}#{i}", w, list(self.answers), self.doc, self.evidence) for i, w in enumerate(self.wordings, start=1)]


def load_groups(path: Path) -> list[Group]:
    groups, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        rec = json.loads(line)
        wordings = rec.get("wordings")
        if not isinstance(wordings, list) or len(wordings) < 2 or not all(isinstance(w, str) and w.strip() for w in wordings):
            raise SystemExit(f"{path}:{number}: a group needs at least 2 non-empty wordings")
        if rec["id"] in seen:
            raise SystemExit(f"{path}:{number}: duplicate id {rec['id']!r}")
        seen.add(rec["id"])
        groups.append(Group(rec["id"], rec["doc"], wordings, rec.get("answers", []), rec.get("evidence"), rec.get("kind", ""), rec.get("note", "")))
    return groups


def open_pipelines(indexes: dict[Path, Path | None]) -> list[Pipeline]:
    """One pipeline per index, sharing the encoder and the reader; a missing index with a
    source folder is built first."""
    pipelines: list[Pipeline] = []
    for index, source in indexes.items():
        shared = pipelines[0] if pipelines else None
        pipeline = Pipeline(Settings(index_dir=index), encoder=shared.encoder if shared else None, reader=shared.reader if shared else None)
        if shared is None:
            pipeline.encoder.warm_up()
            pipeline.reader.warm_up()
        pipeline.models_ready = True
        if not (index / "store.sqlite").exists():
            if source is None:
                raise SystemExit(f"no index at {index}")
            print(f"building {index} from {source}", file=sys.stderr)
            pipeline.index_paths([source])
        pipeline.reload()
        pipelines.append(pipeline)
    return pipelines


def find_document(pipelines: list[Pipeline], doc: str) -> tuple[Pipeline, str] | None:
    for pipeline in pipelines:
        for doc_id, stored in pipeline.index.documents.items():
            if doc_matches(doc, doc_id, stored.document.source_path or ""):
                return pipeline, doc_id
    return None


def check(groups: list[Group], pipelines: list[Pipeline]) -> list[str]:
    problems = []
    for group in groups:
        found = find_document(pipelines, group.doc)
        if found is None:
            problems.append(f"{group.id}: document {group.doc!r} is in none of the indexes")
            continue
        pipeline, doc_id = found
        if not group.answerable:
            continue
        text = pipeline.index.documents[doc_id].document.text
        if group.answers[0] not in text:
            problems.append(f"{group.id}: answer {group.answers[0]!r} does not occur verbatim in {doc_id}")
        if group.evidence and not any(contains(p.text, group.evidence) for p in pipeline.index.paragraphs_of(doc_id)):
            problems.append(f"{group.id}: evidence {group.evidence!r} is in no paragraph of {doc_id}")
    return problems


def ask(groups: list[Group], pipelines: list[Pipeline]) -> float:
    threshold = 0.0
    for pipeline in pipelines:
        mine = [g for g in groups if (found := find_document(pipelines, g.doc)) and found[0] is pipeline]
        questions = [q for g in mine for q in g.questions()]
        if not questions:
            continue
        records, threshold = run_open(pipeline, questions, batch_size=1, desc=str(pipeline.settings.index_dir))
        by_id = {r.id: r for r in records}
        for g in mine:
            g.records = [by_id[q.id] for q in g.questions()]
    return threshold


def _mean(values) -> float | None:
    values = list(values)
    return round(100 * statistics.fmean(values), 2) if values else None


def group_report(g: Group) -> dict:
    return {
        "id": g.id, "doc": g.doc, "kind": g.kind, "answers": g.answers,
        "stable": len({r.abstained for r in g.records}) == 1,
        "same_answer": len({normalize_answer(r.prediction) for r in g.records}) == 1,
        "wordings": [{"question": r.question, "answered": not r.abstained, "prediction": r.prediction, "candidate": r.candidate,
                      "score": None if r.score is None else round(r.score, 4), "f1": round(r.f1, 3), "evidence_rank": r.first_rank}
                     for r in g.records],
    }


def summarize(groups: list[Group], threshold: float) -> dict:
    reports = [group_report(g) for g in groups]
    answerable = [r for r in reports if r["answers"]]
    unanswerable = [r for r in reports if not r["answers"]]
    wordings = [(g, i, r) for g in groups for i, r in enumerate(g.records)]
    positions = sorted({i for _, i, _ in wordings})

    def rates(rs: list[dict]) -> dict:
        return {"groups": len(rs), "stability_rate": _mean(r["stable"] for r in rs), "answer_agreement": _mean(r["same_answer"] for r in rs)}

    return {
        "threshold": threshold,
        "groups": len(groups), "wordings": len(wordings),
        "all": rates(reports), "answerable": rates(answerable), "unanswerable": rates(unanswerable),
        "mean_f1_per_wording": {
            "all": _mean(r.f1 for _, _, r in wordings),
            "answerable": _mean(r.f1 for g, _, r in wordings if g.answerable),
            "unanswerable": _mean(r.f1 for g, _, r in wordings if not g.answerable),
            "by_position": {str(i + 1): _mean(r.f1 for _, j, r in wordings if j == i) for i in positions},
        },
        "answerable_groups_all_right": sum(all(w["f1"] == 1.0 for w in r["wordings"]) for r in answerable),
        "answerable_groups_all_abstained": sum(not any(w["answered"] for w in r["wordings"]) for r in answerable),
        "unanswerable_wordings_answered": sum(not r.abstained for g, _, r in wordings if not g.answerable),
        "flipping": [r for r in reports if not r["stable"]],
        "answer_changes": [r for r in reports if r["stable"] and not r["same_answer"]],
        "groups_detail": reports,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=HERE / "pairs.jsonl")
    parser.add_argument("--index", type=Path, action="append", help="an index to ask (repeatable); default: /tmp/seed-index and /tmp/realdocs-index")
    parser.add_argument("--out", type=Path, default=HERE / "stability.json")
    parser.add_argument("--check-only", action="store_true", help="check the set against the indexes and stop")
    args = parser.parse_args()
    indexes: dict[Path, Path | None] = {p: None for p in args.index} if args.index else dict(DEFAULT_INDEXES)
    groups = load_groups(args.pairs)
    pipelines = open_pipelines(indexes)
    problems = check(groups, pipelines)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        raise SystemExit(f"{len(problems)} problem(s) in {args.pairs}")
    print(f"{len(groups)} groups ({sum(g.answerable for g in groups)} answerable), {sum(len(g.wordings) for g in groups)} wordings: checked", file=sys.stderr)
    if args.check_only:
        return
    threshold = ask(groups, pipelines)
    from rag.evaluation.command import run_context

    result = {**run_context(), "reader": pipelines[0].reader.name, "reader_top_k": pipelines[0].settings.reader_top_k,
              "indexes": [str(p) for p in indexes],
              "command": "python eval/paraphrase/stability.py " + " ".join(sys.argv[1:]), **summarize(groups, threshold)}
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    a, f1 = result, result["mean_f1_per_wording"]
    print(f"stability rate {a['all']['stability_rate']} (answerable {a['answerable']['stability_rate']}, unanswerable "
          f"{a['unanswerable']['stability_rate']}); answer agreement {a['all']['answer_agreement']} (answerable "
          f"{a['answerable']['answer_agreement']}); mean F1 per wording {f1['all']} (answerable {f1['answerable']}, by position {f1['by_position']})")
    for r in result["flipping"]:
        print(f"  flips: {r['id']}: " + " | ".join(f"{w['prediction'] or '(abstains)'} {w['score']}" for w in r["wordings"]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
