"""Gold question files: JSON Lines, one question per line.

    {"id": "q1", "question": "...", "answers": ["exact answer", "a variant"],
     "doc": "optional document id or file name", "evidence": "optional supporting text"}

``"answers": []`` marks a question the documents do not answer (the service should abstain).
The first answer is normally a verbatim substring of the document; variants need not be.
"""
from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path

from rag.text_metrics import normalize_answer
from rag.ingest import slugify

ALLOWED_FIELDS = {"id", "question", "answers", "doc", "evidence", "type", "note", "tags"}


class GoldFormatError(ValueError):
    """A gold file that cannot be evaluated; the message names the file and line."""


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    doc: str | None = None
    evidence: str | None = None
    # SQuAD open mode: the id of the paragraph the question was written on (not a relevance
    # requirement, reported as an extra "paragraph recall").
    source_doc: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_gold(path: Path) -> list[GoldQuestion]:
    """Read and validate a gold file; raises GoldFormatError with every problem found."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GoldFormatError(f"cannot read gold file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise GoldFormatError(f"{path} is not UTF-8 text") from exc
    questions: list[GoldQuestion] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            question = parse_gold_record(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{number}: not valid JSON ({exc.msg})")
            continue
        except GoldFormatError as exc:
            errors.append(f"{path}:{number}: {exc}")
            continue
        if question.id in seen:
            errors.append(f"{path}:{number}: duplicate id {question.id!r}")
            continue
        seen.add(question.id)
        questions.append(question)
    if errors:
        shown = "\n".join(errors[:20]) + (f"\n... and {len(errors) - 20} more" if len(errors) > 20 else "")
        raise GoldFormatError(f"{len(errors)} problem(s) in the gold file:\n{shown}")
    if not questions:
        raise GoldFormatError(f"{path} holds no questions")
    return questions


def parse_gold_record(record: object) -> GoldQuestion:
    if not isinstance(record, dict):
        raise GoldFormatError("each line must be a JSON object")
    unknown = set(record) - ALLOWED_FIELDS
    if unknown:
        raise GoldFormatError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(ALLOWED_FIELDS)}")
    qid = record.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or not str(qid).strip():
        raise GoldFormatError('"id" must be a non-empty string')
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise GoldFormatError('"question" must be a non-empty string')
    answers = record.get("answers")
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise GoldFormatError('"answers" must be a list of non-empty strings ([] for an unanswerable question)')
    for key in ("doc", "evidence"):
        value = record.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise GoldFormatError(f'"{key}" must be a non-empty string when given')
    tags = record.get("tags") or ([record["type"]] if isinstance(record.get("type"), str) else [])
    return GoldQuestion(
        id=str(qid),
        question=question.strip(),
        answers=list(answers),
        doc=record.get("doc"),
        evidence=record.get("evidence"),
        tags=tuple(str(t) for t in tags),
    )


def doc_matches(gold_doc: str | None, document_id: str, source_path: str = "") -> bool:
    """Does a gold "doc" (an id or a file name) name this indexed document?"""
    if not gold_doc:
        return True
    if gold_doc == document_id:
        return True
    name = Path(gold_doc).name
    if source_path and Path(source_path).name == name:
        return True
    stem = name.split(".")[0] if "." in name else name
    return slugify(stem) == document_id or slugify(gold_doc) == document_id


def contains(text: str, needle: str) -> bool:
    """``needle`` occurs in ``text`` at word boundaries after SQuAD-style normalisation.

    Lower-cased, articles dropped, and punctuation (ASCII and typographic) either deleted, as
    SQuAD's EM does ("the U.S." matches "US"), or read as a word break ("France" is in
    "France’s"); either way "1960" is not found inside "19601".  A needle that normalises to
    nothing is looked up verbatim.
    """
    for drop in (True, False):
        norm_needle = _normalized(needle, drop)
        if not norm_needle:
            return needle in text
        if f" {norm_needle} " in f" {_normalized(text, drop)} ":
            return True
    return False


@lru_cache(maxsize=65536)
def _normalized(text: str, drop_punctuation: bool) -> str:
    # SQuAD's normalisation only deletes ASCII punctuation; typographic marks (“ ” ’ –) go too.
    sep = "" if drop_punctuation else " "
    return normalize_answer("".join(sep if unicodedata.category(ch).startswith("P") or ch in "$+<=>^`|~" else ch for ch in text))


def supports(gold: GoldQuestion, text: str) -> bool:
    """Relevance of a retrieved or cited paragraph: it contains the gold evidence when the
    question gives one, else a gold answer."""
    if gold.evidence:
        return contains(text, gold.evidence)
    return any(contains(text, a) for a in gold.answers)
