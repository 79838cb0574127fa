"""Public benchmark loaders: SQuAD v1.1/v2.0 JSON files and BEIR folders.

Nothing here copies data: files are read from the path the user gives.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from rag.evaluation.gold import GoldFormatError, GoldQuestion
from rag.ingest import slugify


@dataclass(frozen=True)
class SquadParagraph:
    doc_id: str  # "<slug of the article title>-p<n>": the Document id in open mode
    title: str
    context: str


@dataclass
class SquadSet:
    version: str  # "1.1" or "2.0"
    paragraphs: dict[str, SquadParagraph]
    questions: list[GoldQuestion]  # source_doc names the question's own paragraph
    total_questions: int = 0  # before --limit

    @property
    def has_unanswerable(self) -> bool:
        return any(not q.answerable for q in self.questions)


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    """``limit`` of ``range(n)`` drawn with ``random.Random(seed)``, kept in file order."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def load_squad(path: Path, limit: int | None = None, seed: int = 0) -> SquadSet:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GoldFormatError(f"cannot read SQuAD file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise GoldFormatError(f"{path} is not a SQuAD file: no top-level \"data\" list")
    paragraphs: dict[str, SquadParagraph] = {}
    questions: list[GoldQuestion] = []
    has_impossible_field = False
    used_ids: set[str] = set()
    for article in data["data"]:
        title = str(article.get("title", "")).replace("_", " ").strip() or "untitled"
        base = slugify(title)
        if base in used_ids:
            n = 2
            while f"{base}-{n}" in used_ids:
                n += 1
            base = f"{base}-{n}"
        used_ids.add(base)
        for p_index, paragraph in enumerate(article.get("paragraphs", [])):
            doc_id = f"{base}-p{p_index}"
            context = paragraph["context"]
            paragraphs[doc_id] = SquadParagraph(doc_id, title, context)
            for qa in paragraph.get("qas", []):
                if "is_impossible" in qa:
                    has_impossible_field = True
                impossible = bool(qa.get("is_impossible", False))
                answers = [] if impossible else _unique(a["text"] for a in qa.get("answers", []))
                if not impossible and not answers:
                    continue  # malformed: answerable without answers
                questions.append(
                    GoldQuestion(id=str(qa["id"]), question=qa["question"], answers=answers, source_doc=doc_id)
                )
    version = "2.0" if has_impossible_field or str(data.get("version", "")).startswith("v2") else "1.1"
    total = len(questions)
    questions = [questions[i] for i in sample_indices(total, limit, seed)]
    return SquadSet(version, paragraphs, questions, total)


def _unique(texts) -> list[str]:
    out: list[str] = []
    for text in texts:
        if text.strip() and text not in out:
            out.append(text)
    return out


@dataclass
class BeirSet:
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # only queries judged in the split
    qrels: dict[str, dict[str, int]]
    split: str = "test"
    total_queries: int = 0
    name: str = ""
    extra: dict = field(default_factory=dict)


def load_beir(folder: Path, split: str = "test", limit: int | None = None, seed: int = 0) -> BeirSet:
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for needed in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise GoldFormatError(f"{folder} is not a BEIR folder: {needed.relative_to(folder)} is missing")
    corpus: dict[str, tuple[str, str]] = {}
    for row in _jsonl(folder / "corpus.jsonl"):
        corpus[str(row["_id"])] = (str(row.get("title") or ""), str(row.get("text") or ""))
    all_queries = {str(row["_id"]): str(row["text"]) for row in _jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for n, row in enumerate(reader):
            if not row or (n == 0 and not row[-1].lstrip("-").isdigit()):
                continue  # header "query-id corpus-id score"
            qid, doc_id, score = row[0], row[1], int(row[-1])
            qrels.setdefault(qid, {})[doc_id] = score
    judged = [qid for qid in qrels if qid in all_queries and any(s > 0 for s in qrels[qid].values())]
    keep = [judged[i] for i in sample_indices(len(judged), limit, seed)]
    return BeirSet(
        corpus=corpus,
        queries={qid: all_queries[qid] for qid in keep},
        qrels={qid: qrels[qid] for qid in keep},
        split=split,
        total_queries=len(judged),
        name=folder.name,
    )


def _jsonl(path: Path):
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
