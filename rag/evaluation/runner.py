"""Run questions through the pipeline (or the reader alone) and keep per-question diagnostics.

Open questions (gold files, SQuAD open mode) go through ``Pipeline.ask_batch``, the code path
the API uses.  The harness asks with this call's answer threshold set to 0, so the best
candidate is returned even when the service would abstain, and applies the threshold itself
with the service's own rule (``rag.abstention.answers``).  The decisions are therefore the
service's, and the candidates of abstentions are kept for the threshold sweep and the
calibration plot.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

from tqdm import tqdm

from rag.abstention import answers
from rag.errors import RagError
from rag.evaluation.gold import GoldQuestion, doc_matches, supports
from rag.text_metrics import best_over_golds
from rag.pipeline import Pipeline
from rag.reading import Reader
from rag.types import Paragraph, Passage, QAResult, RetrievedPassage

log = logging.getLogger(__name__)

# Passages kept per question for recall@k (recall@20 is the deepest reported).
RETRIEVAL_DEPTH = 20
# Below this many questions a progress bar is noise.
PROGRESS_MIN = 50

CORRECT = "correct"
RETRIEVAL_MISS = "retrieval_miss"
READER_MISS = "reader_miss"
WRONG_ABSTENTION = "wrong_abstention"
ANSWERED_UNANSWERABLE = "answered_unanswerable"
CATEGORIES = (CORRECT, RETRIEVAL_MISS, READER_MISS, WRONG_ABSTENTION, ANSWERED_UNANSWERABLE)


@dataclass
class Record:
    """One question's outcome; one line of diagnostics.jsonl."""

    id: str
    question: str
    answers: list[str]
    answerable: bool
    prediction: str = ""  # "" = abstained
    score: float | None = None  # the best candidate's score (answered or not)
    candidate: str = ""  # the best candidate, shown even when the service abstained
    abstained: bool = True
    em: float = 0.0  # 0..1, of ``prediction``
    f1: float = 0.0
    candidate_em: float = 0.0  # of ``candidate`` (no threshold)
    candidate_f1: float = 0.0
    retrieved: list[str] = field(default_factory=list)  # "doc_id#paragraph", best first
    relevant_ranks: list[int] | None = None  # 1-based ranks of passages holding the gold; None = no retrieval
    paragraph_rank: int | None = None  # SQuAD open: rank of the question's own paragraph
    reader_saw_gold: bool | None = None  # a relevant passage was among those the reader read
    cited: str | None = None  # "doc_id#paragraph" of the answer's citation
    citation_correct: bool | None = None
    latency_ms: float = 0.0
    category: str = ""
    note: str = ""

    @property
    def first_rank(self) -> int | None:
        return self.relevant_ranks[0] if self.relevant_ranks else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["em"], data["f1"] = round(self.em, 4), round(self.f1, 4)
        data["candidate_em"], data["candidate_f1"] = round(self.candidate_em, 4), round(self.candidate_f1, 4)
        data["latency_ms"] = round(self.latency_ms, 2)
        return data


def score_prediction(record: Record, threshold: float) -> None:
    """Apply the threshold and fill EM/F1 of the candidate and of the decision."""
    record.candidate_em, record.candidate_f1 = best_over_golds(record.candidate, record.answers) if record.candidate else best_over_golds("", record.answers)
    answered = bool(record.candidate) and record.score is not None and answers(record.score, threshold)
    record.abstained = not answered
    record.prediction = record.candidate if answered else ""
    record.em, record.f1 = best_over_golds(record.prediction, record.answers)


def categorize(record: Record) -> str:
    if not record.answerable:
        return CORRECT if record.abstained else ANSWERED_UNANSWERABLE
    if record.em == 1.0:
        return CORRECT
    if record.reader_saw_gold is False:
        return RETRIEVAL_MISS
    if record.abstained:
        return WRONG_ABSTENTION
    return READER_MISS


def progress(total: int, desc: str, show: bool | None = None) -> tqdm:
    if show is None:
        show = total >= PROGRESS_MIN
    return tqdm(total=total, desc=desc, unit="q", file=sys.stderr, disable=not show, mininterval=1.0, dynamic_ncols=True)


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_open(
    pipeline: Pipeline,
    questions: Sequence[GoldQuestion],
    *,
    mode: str | None = None,
    batch_size: int = 32,
    threshold: float | None = None,
    show_progress: bool | None = None,
    desc: str = "asking",
) -> tuple[list[Record], float]:
    """Ask every question through ``Pipeline.ask_batch``; returns the records and the threshold used."""
    index = pipeline.index
    sources = {doc_id: stored.document.source_path for doc_id, stored in index.documents.items()}
    reader_k = pipeline.settings.reader_top_k
    records: list[Record] = []
    threshold = pipeline.threshold if threshold is None else threshold
    with progress(len(questions), desc, show_progress) as bar:
        for batch in batches(list(questions), batch_size):
            for gold, result in zip(batch, _ask(pipeline, batch, mode), strict=True):
                records.append(_open_record(gold, result, sources, reader_k, threshold))
            bar.update(len(batch))
    return records, threshold


def _ask(pipeline: Pipeline, batch: Sequence[GoldQuestion], mode: str | None) -> list[QAResult | str]:
    """Every candidate, even where the service would abstain (threshold 0 for this call only)."""
    try:
        return pipeline.ask_batch([g.question for g in batch], top_k=RETRIEVAL_DEPTH, mode=mode, threshold=0.0)
    except RagError:
        if len(batch) == 1:
            raise
    out: list[QAResult | str] = []  # one bad question (empty, too long) must not sink its batch
    for gold in batch:
        try:
            out.append(pipeline.ask_batch([gold.question], top_k=RETRIEVAL_DEPTH, mode=mode, threshold=0.0)[0])
        except RagError as exc:
            out.append(f"error: {exc}")
    return out


def _open_record(gold: GoldQuestion, result: QAResult | str, sources: dict[str, str], reader_k: int, threshold: float) -> Record:
    record = Record(gold.id, gold.question, list(gold.answers), gold.answerable)
    if isinstance(result, str):
        record.note = result
        record.relevant_ranks = []
        record.reader_saw_gold = False
        score_prediction(record, threshold)
        record.category = categorize(record)
        return record
    passages = result.passages[:RETRIEVAL_DEPTH]
    record.retrieved = [f"{p.paragraph.document_id}#{p.paragraph.paragraph_index}" for p in passages[:5]]
    if gold.answerable:
        record.relevant_ranks = [
            rank
            for rank, p in enumerate(passages, start=1)
            if doc_matches(gold.doc, p.paragraph.document_id, sources.get(p.paragraph.document_id, "")) and supports(gold, p.paragraph.text)
        ]
        record.reader_saw_gold = any(rank <= reader_k for rank in record.relevant_ranks)
    if gold.source_doc:
        record.paragraph_rank = next((rank for rank, p in enumerate(passages, start=1) if p.paragraph.document_id == gold.source_doc), None)
    if result.answers:
        best = result.answers[0]
        record.candidate, record.score = best.text, float(best.score)
        cite = best.citation
        record.cited = f"{cite.document_id}#{cite.paragraph_index}"
    elif result.no_answer is not None:
        record.note = result.no_answer.reason
    record.latency_ms = float(result.timings_ms.get("total", 0.0))
    score_prediction(record, threshold)
    if not record.abstained and gold.answerable:
        cite = result.answers[0].citation
        record.citation_correct = doc_matches(gold.doc, cite.document_id, sources.get(cite.document_id, "")) and supports(gold, cite.paragraph_text)
    record.category = categorize(record)
    return record


def gold_passage(doc_id: str, title: str, context: str) -> RetrievedPassage:
    """The question's own paragraph, shaped like a retrieval result (reader mode)."""
    paragraph = Paragraph(document_id=doc_id, paragraph_index=0, text=context, doc_start=0, doc_end=len(context))
    passage = Passage(passage_id=0, document_id=doc_id, paragraph_index=0, text=context, paragraph_start=0, doc_start=0, title=title)
    return RetrievedPassage(passage=passage, paragraph=paragraph, score=1.0, rank=1)


def run_reader(
    reader: Reader,
    questions: Sequence[GoldQuestion],
    contexts: dict[str, tuple[str, str]],
    *,
    threshold: float,
    batch_size: int = 32,
    show_progress: bool | None = None,
) -> list[Record]:
    """Reading comprehension: each question with its own paragraph only (no retrieval).

    ``contexts`` maps a question's ``source_doc`` to (title, paragraph text).
    """
    records: list[Record] = []
    with progress(len(questions), "reading", show_progress) as bar:
        for batch in batches(list(questions), batch_size):
            passages = [[gold_passage(g.source_doc, *contexts[g.source_doc])] for g in batch]
            started = time.perf_counter()
            outputs = reader.read_batch([g.question for g in batch], passages, top_n=3)
            per_question = (time.perf_counter() - started) * 1000 / len(batch)
            for gold, output in zip(batch, outputs, strict=True):
                record = Record(gold.id, gold.question, list(gold.answers), gold.answerable, latency_ms=per_question)
                if output.spans:
                    record.candidate, record.score = output.spans[0].text, float(output.spans[0].score)
                    record.cited = f"{gold.source_doc}#0"
                score_prediction(record, threshold)
                record.category = categorize(record)
                records.append(record)
            bar.update(len(batch))
    return records
