"""The four evaluations behind ``rag eval``: a gold file, SQuAD reader mode, SQuAD open mode, BEIR.

Each returns an ``Evaluation``: the metrics (the JSON keys of ``rag eval --json``), the
per-question diagnostics, and the curves the report plots.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.evaluation import metrics as M
from rag.evaluation.datasets import BeirSet, SquadSet
from rag.evaluation.gold import GoldQuestion
from rag.evaluation.runner import Record, batches, categorize, progress, run_open, run_reader
from rag.ingest import document_from_text, slugify
from rag.pipeline import Pipeline
from rag.retrieval import RetrievalParams
from rag.types import Document

log = logging.getLogger(__name__)

# BEIR: passages fetched per query; documents are ranked by their best passage, and 300
# passages cover the 100 documents recall@100 needs even when abstracts are cut into windows.
BEIR_PASSAGE_DEPTH = 300
BEIR_DOC_DEPTH = 100


@dataclass
class Evaluation:
    kind: str  # "gold" | "squad" | "beir"
    metrics: dict
    config: dict
    records: list[dict] = field(default_factory=list)  # diagnostics.jsonl rows
    recall_curve: dict[int, float] = field(default_factory=dict)
    scores: list[tuple[float, float]] = field(default_factory=list)  # (candidate score, candidate F1)
    latencies: list[float] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"kind": self.kind}
        out.update({k: v for k, v in self.metrics.items()})
        out["config"] = self.config
        out["timings_s"] = {k: round(v, 1) for k, v in self.timings_s.items()}
        return out


def _from_records(kind: str, records: Sequence[Record], config: dict, *, retrieval: bool, citations: bool, timings: dict) -> Evaluation:
    return Evaluation(
        kind=kind,
        metrics=M.summarize(records, retrieval=retrieval, citations=citations),
        config=config,
        records=[r.to_dict() for r in records],
        recall_curve=M.recall_curve(records) if retrieval else {},
        scores=[(r.score, r.candidate_f1) for r in records if r.candidate and r.score is not None],
        latencies=[r.latency_ms for r in records],
        timings_s=timings,
    )


def pipeline_config(pipeline: Pipeline, mode: str | None, threshold: float) -> dict:
    s = pipeline.settings
    return {
        "reader": pipeline.reader.name,
        "encoder": pipeline.encoder.name,
        "retrieval_mode": mode or s.retrieval_mode,
        "threshold": threshold,
        "reader_top_k": s.reader_top_k,
        "candidate_depth": s.candidate_depth,
        "rrf_k": s.rrf_k,
        "bm25_weight": s.bm25_weight,
        "dense_weight": s.dense_weight,
    }


def evaluate_gold(pipeline: Pipeline, questions: Sequence[GoldQuestion], *, mode: str | None = None, batch_size: int = 1,
                  threshold: float | None = None, source: str = "") -> Evaluation:
    """Every question through the pipeline the API uses, against the pipeline's own index."""
    index = pipeline.index
    unknown = sorted({q.doc for q in questions if q.doc} - _doc_names(index))
    missing: dict[str, str] = {}  # question id -> how it is scored: "evidence" or "unscored"
    if unknown:
        # A gold file for other documents scored recall@5 0.00 and citation_accuracy 0.00, as
        # if retrieval had failed (issue 21): its questions' passages are judged by their
        # evidence text wherever it is, and those without evidence are not judged at all.
        log.warning("gold questions name documents that are not in the index: %s", ", ".join(unknown))
        missing = {q.id: "evidence" if q.evidence else "unscored" for q in questions if q.doc in unknown}
        questions = [dataclasses.replace(q, doc=None) if missing.get(q.id) == "evidence" else q for q in questions]
    started = time.perf_counter()
    records, used = run_open(pipeline, questions, mode=mode, batch_size=batch_size, threshold=threshold)
    for record in records:
        if missing.get(record.id) == "unscored":
            record.relevant_ranks, record.reader_saw_gold, record.citation_correct = None, None, None
            record.category = categorize(record)
            record.note = (record.note + "; " if record.note else "") + "gold document not in the index: retrieval not judged"
    config = {"dataset": source, "mode": "gold", **pipeline_config(pipeline, mode, used),
              "index_documents": len(index.documents), "index_passages": len(index.passages), "batch_size": batch_size}
    if unknown:
        config["documents_not_in_index"] = unknown
        config["questions_scored_by_evidence"] = sum(1 for how in missing.values() if how == "evidence")
        config["questions_not_judged_for_retrieval"] = sum(1 for how in missing.values() if how == "unscored")
        config["index_dir"] = str(pipeline.settings.index_dir)
    return _from_records("gold", records, config, retrieval=True, citations=True, timings={"ask": time.perf_counter() - started})


def missing_documents_note(c: dict) -> list[str]:
    """What a gold file for other documents means for the numbers above, in plain words."""
    names = c["documents_not_in_index"]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    lines = [f"note: {len(names)} document{'s' if len(names) != 1 else ''} named in the gold file's \"doc\" fields "
             f"{'are' if len(names) != 1 else 'is'} not in the index {c.get('index_dir', '')} "
             f"({c.get('index_documents', '?')} documents): {shown}"]
    if c.get("questions_scored_by_evidence"):
        lines.append(f"  {c['questions_scored_by_evidence']} of their questions are scored by their evidence text anywhere in the index")
    if c.get("questions_not_judged_for_retrieval"):
        lines.append(f"  {c['questions_not_judged_for_retrieval']} of their questions have no evidence text: left out of recall and citation_accuracy")
    lines.append("  index those files first (rag index FILES --index DIR, then rag eval GOLD --index DIR), or fix the \"doc\" fields")
    return lines


def _doc_names(index) -> set[str]:
    names = set(index.documents)
    for stored in index.documents.values():
        if stored.document.source_path:
            names.add(Path(stored.document.source_path).name)
            names.add(Path(stored.document.source_path).stem)
    return names


def evaluate_squad_reader(pipeline: Pipeline, squad: SquadSet, *, batch_size: int = 32, threshold: float | None = None,
                          source: str = "") -> Evaluation:
    """The reader alone on each question's own paragraph (published reading-comprehension setting)."""
    used = pipeline.threshold if threshold is None else threshold
    contexts = {doc_id: (p.title, p.context) for doc_id, p in squad.paragraphs.items()}
    started = time.perf_counter()
    records = run_reader(pipeline.reader, squad.questions, contexts, threshold=used, batch_size=batch_size)
    config = {"dataset": source, "squad_version": squad.version, "mode": "reader", "reader": pipeline.reader.name,
              "threshold": used, "questions_in_file": squad.total_questions, "batch_size": batch_size}
    return _from_records("squad", records, config, retrieval=False, citations=False, timings={"read": time.perf_counter() - started})


def squad_documents(squad: SquadSet) -> list[Document]:
    return [
        document_from_text(p.context, document_id=p.doc_id, metadata={"title": p.title})
        for p in squad.paragraphs.values()
        if p.context.strip()
    ]


def evaluate_squad_open(pipeline: Pipeline, squad: SquadSet, *, index_dir: Path | None = None, mode: str | None = None,
                        batch_size: int = 32, threshold: float | None = None, source: str = "") -> Evaluation:
    """All paragraphs of the file become the corpus; every question goes through retrieval and reading.

    The index is built in a temporary folder, or in ``index_dir`` (re-used when it already holds
    these paragraphs with the same encoder: nothing is re-embedded).
    """
    timings: dict[str, float] = {}
    with index_folder(index_dir) as folder:
        pipeline = _with_index(pipeline, Path(folder))
        started = time.perf_counter()
        report = pipeline.upsert_documents(squad_documents(squad), origin="file")
        timings["index"] = time.perf_counter() - started
        started = time.perf_counter()
        records, used = run_open(pipeline, squad.questions, mode=mode, batch_size=batch_size, threshold=threshold)
        timings["ask"] = time.perf_counter() - started
    config = {"dataset": source, "squad_version": squad.version, "mode": "open", **pipeline_config(pipeline, mode, used),
              "questions_in_file": squad.total_questions, "index_documents": report.documents,
              "index_passages": report.passages, "embedded_passages": report.embedded_passages, "batch_size": batch_size}
    return _from_records("squad", records, config, retrieval=True, citations=True, timings=timings)


def index_folder(index_dir: Path | None):
    if index_dir is None:
        return tempfile.TemporaryDirectory(prefix="rag-eval-")
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    return nullcontext(str(index_dir))


def _with_index(pipeline: Pipeline, folder: Path) -> Pipeline:
    """A pipeline on another index folder that shares the loaded encoder and reader."""
    settings = pipeline.settings.model_copy(update={"index_dir": folder})
    other = Pipeline(settings, encoder=pipeline.encoder, reader=pipeline.reader)
    other.models_ready = pipeline.models_ready
    return other


# ----------------------------------------------------------------------------------- BEIR
def beir_documents(beir: BeirSet) -> tuple[list[Document], dict[str, str]]:
    """One Document per corpus entry ("title. text", BEIR's title+text convention); returns the
    documents and a map from our document id back to the BEIR id."""
    documents, back = [], {}
    for beir_id, (title, text) in beir.corpus.items():
        body = f"{title.strip()}. {text.strip()}" if title.strip() and text.strip() else (title or text).strip()
        if not body:
            continue
        doc_id = slugify(beir_id)
        if doc_id in back:
            doc_id = f"{doc_id}--{len(back)}"
        back[doc_id] = beir_id
        documents.append(document_from_text(body, document_id=doc_id, metadata={"title": title.strip()[:300]}))
    return documents, back


def build_beir_index(pipeline: Pipeline, beir: BeirSet, folder: Path) -> tuple[Pipeline, dict[str, str], float]:
    pipeline = _with_index(pipeline, folder)
    documents, back = beir_documents(beir)
    started = time.perf_counter()
    pipeline.upsert_documents(documents, origin="file")
    return pipeline, back, time.perf_counter() - started


def beir_params(pipeline: Pipeline, mode: str, **overrides) -> RetrievalParams:
    params = RetrievalParams.from_settings(pipeline.settings, mode)
    return dataclasses.replace(params, **{"top_k": BEIR_PASSAGE_DEPTH, **overrides})


def beir_run(pipeline: Pipeline, beir: BeirSet, back: dict[str, str], params: RetrievalParams, *, batch_size: int = 64,
             retriever=None, show_progress: bool | None = None) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Rank documents by their best passage for every query; returns (run, latency per query in ms)."""
    retriever = retriever or pipeline.retriever
    index = pipeline.index
    run: dict[str, dict[str, float]] = {}
    latency: dict[str, float] = {}
    qids = list(beir.queries)
    with progress(len(qids), "retrieving", show_progress) as bar:
        for batch in batches(qids, batch_size):
            started = time.perf_counter()
            try:
                results = retriever.search_batch(index, [beir.queries[q] for q in batch], params)
            except RagError as exc:
                log.warning("retrieval failed for a batch: %s", exc)
                results = [[] for _ in batch]
            per_query = (time.perf_counter() - started) * 1000 / len(batch)
            for qid, passages in zip(batch, results, strict=True):
                ranking: dict[str, float] = {}
                for passage in passages:
                    doc = back.get(passage.passage.document_id, passage.passage.document_id)
                    if doc not in ranking:
                        ranking[doc] = float(BEIR_PASSAGE_DEPTH - len(ranking))
                        if len(ranking) == BEIR_DOC_DEPTH:
                            break
                run[qid] = ranking
                latency[qid] = per_query
            bar.update(len(batch))
    return run, latency


def evaluate_beir(pipeline: Pipeline, beir: BeirSet, *, mode: str = "hybrid", index_dir: Path | None = None,
                  batch_size: int = 64, source: str = "", candidate_depth: int | None = None) -> Evaluation:
    timings: dict[str, float] = {}
    with index_folder(index_dir) as folder:
        pipeline, back, timings["index"] = build_beir_index(pipeline, beir, Path(folder))
        overrides = {"candidate_depth": candidate_depth} if candidate_depth else {}
        params = beir_params(pipeline, mode, **overrides)
        started = time.perf_counter()
        run, latency = beir_run(pipeline, beir, back, params, batch_size=batch_size)
        timings["retrieve"] = time.perf_counter() - started
        index = pipeline.index
        config = {"dataset": source, "split": beir.split, "mode": mode, "encoder": pipeline.encoder.name,
                  "candidate_depth": params.candidate_depth, "rrf_k": params.rrf_k, "bm25_weight": params.bm25_weight,
                  "dense_weight": params.dense_weight, "passage_depth": params.top_k,
                  "max_passage_words": pipeline.settings.max_passage_words, "index_documents": len(index.documents),
                  "index_passages": len(index.passages), "queries_in_split": beir.total_queries}
    metrics = M.beir_metrics(beir.qrels, run)
    metrics.update(M.latency_metrics_from(list(latency.values())))
    records, curve = _beir_diagnostics(beir, run, latency)
    metrics["categories"] = {"correct": sum(r["category"] == "correct" for r in records),
                             "retrieval_miss": sum(r["category"] == "retrieval_miss" for r in records)}
    return Evaluation("beir", metrics, config, records, curve, [], list(latency.values()), timings)


def _beir_diagnostics(beir: BeirSet, run: dict, latency: dict) -> tuple[list[dict], dict[int, float]]:
    per_query = M.beir_per_query(beir.qrels, run)
    records = []
    for qid, query in beir.queries.items():
        ranked = sorted(run.get(qid, {}).items(), key=lambda kv: -kv[1])
        relevant = {d for d, s in beir.qrels[qid].items() if s > 0}
        ranks = [i for i, (doc, _) in enumerate(ranked, start=1) if doc in relevant]
        records.append({
            "id": qid, "question": query, "relevant": sorted(relevant), "retrieved": [d for d, _ in ranked[:10]],
            "relevant_ranks": ranks, **per_query.get(qid, {}),
            "latency_ms": round(latency.get(qid, 0.0), 2),
            "category": "correct" if ranks and ranks[0] <= 10 else "retrieval_miss",
        })
    curve = M.beir_recall_curve(beir.qrels, run)
    return records, curve
