"""``rag eval``: measure answer quality on a gold file, SQuAD (reader or open mode) or BEIR.

    rag eval GOLD.jsonl [--index DIR]
    rag eval --squad FILE --mode reader|open [--limit N --seed S]
    rag eval --beir DIR [--mode bm25|dense|hybrid] [--split test|train] [--tune]

``--json`` prints one JSON object as the last line of stdout; ``--report DIR`` writes
report.md, diagnostics.jsonl, metrics.json and PNG plots.  Progress bars go to stderr.
"""
from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.errors import RagError
from rag.evaluation.gold import GoldFormatError
from rag.settings import RetrievalMode

log = logging.getLogger(__name__)

SQUAD_MODES = ("reader", "open")
RETRIEVAL_MODES = tuple(mode.value for mode in RetrievalMode)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def eval_command(
    gold: Annotated[Optional[Path], typer.Argument(help="Gold questions (JSON Lines) to ask against the index")] = None,
    squad: Annotated[Optional[Path], typer.Option("--squad", help="A SQuAD v1.1 or v2.0 JSON file")] = None,
    beir: Annotated[Optional[Path], typer.Option("--beir", help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="--squad: reader | open (default reader); --beir and gold files: bm25 | dense | hybrid")] = None,
    retrieval: Annotated[Optional[str], typer.Option("--retrieval", help="Retrieval mode for --squad --mode open [default: settings]")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate a random sample of N questions")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit sample")] = 0,
    split: Annotated[str, typer.Option("--split", help="BEIR qrels split (qrels/<split>.tsv)")] = "test",
    index: Annotated[Optional[Path], typer.Option("--index", help="Gold files: the index to ask [env RAG_INDEX_DIR]; --squad open / --beir: keep the built index here (re-used next time) instead of a temporary folder")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Embedding model [env RAG_EMBEDDING_MODEL]")] = None,
    reader: Annotated[Optional[str], typer.Option("--reader", help="auto | heuristic | span | HF QA model [env RAG_READER]")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", min=0.0, max=1.0, help="Answer threshold [default: the reader's]")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, max=50, help="Passages the reader reads per question [env RAG_READER_TOP_K]")] = None,
    candidate_depth: Annotated[Optional[int], typer.Option("--candidate-depth", min=1, help="Fusion candidates per retriever [env RAG_CANDIDATE_DEPTH]")] = None,
    rrf_k: Annotated[Optional[int], typer.Option("--rrf-k", min=1, help="Reciprocal rank fusion constant [env RAG_RRF_K]")] = None,
    bm25_weight: Annotated[Optional[float], typer.Option("--bm25-weight", min=0.0)] = None,
    dense_weight: Annotated[Optional[float], typer.Option("--dense-weight", min=0.0)] = None,
    max_passage_words: Annotated[Optional[int], typer.Option("--max-passage-words", min=16, help="Chunking of --squad open / --beir corpora")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Questions per pipeline call [gold: 1, so latencies are per question; else 32]")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="torch CPU threads (1 is much faster on a CPU shared with other jobs)")] = None,
    tune: Annotated[bool, typer.Option("--tune", help="--beir: grid-search fusion weights, rrf_k and depth on --split (use train)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object (last line of stdout)")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write report.md, diagnostics.jsonl and plots here")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Measure answer quality: your gold questions, SQuAD (reader or open mode), or a BEIR set."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    chosen = [name for name, value in (("GOLD", gold), ("--squad", squad), ("--beir", beir)) if value is not None]
    if len(chosen) != 1:
        _fail("give exactly one of: a GOLD.jsonl file, --squad FILE, --beir DIR" + (f" (got {', '.join(chosen)})" if chosen else ""))
    if tune and beir is None:
        _fail("--tune works with --beir")
    if squad is not None:
        mode = mode or "reader"
        if mode not in SQUAD_MODES:
            _fail(f"--squad takes --mode reader or open, not {mode!r}")
    elif mode is not None and mode not in RETRIEVAL_MODES:
        _fail(f"--mode must be one of {', '.join(RETRIEVAL_MODES)} here, not {mode!r}")
    if retrieval is not None and retrieval not in RETRIEVAL_MODES:
        _fail(f"--retrieval must be one of {', '.join(RETRIEVAL_MODES)}")

    from rag.pipeline import Pipeline
    from rag.settings import Settings

    overrides = {
        "index_dir": index if gold is not None else None, "embedding_model": model, "reader": reader,
        "reader_top_k": top_k, "candidate_depth": candidate_depth, "rrf_k": rrf_k, "bm25_weight": bm25_weight,
        "dense_weight": dense_weight, "max_passage_words": max_passage_words,
    }
    if beir is not None:
        overrides["reader"] = "heuristic"  # retrieval only: never load a reader model
    command = "rag eval " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 and sys.argv[1] == "eval" else ""
    started = time.perf_counter()
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        pipeline = Pipeline(settings)
        if gold is not None:
            pipeline.warm_up()  # loads the index the questions are asked against
        else:  # the benchmark builds its own index; reader mode needs no encoder
            if not (squad is not None and mode == "reader"):
                pipeline.encoder.warm_up()
            pipeline.reader.warm_up()
            pipeline.models_ready = True
        evaluation = _run(pipeline, gold, squad, beir, mode, retrieval, limit, seed, split, index, threshold, batch_size, tune)
    except (RagError, GoldFormatError) as exc:
        _fail(str(exc))
    if evaluation is None:  # --tune printed its own table
        return
    evaluation.timings_s["total"] = time.perf_counter() - started
    evaluation.config.update(run_context())
    evaluation.config["torch_threads"] = _torch_threads()
    if command:
        evaluation.config["command"] = command
    if report is not None:
        from rag.evaluation.report import write_report

        files = write_report(report, evaluation, command)
        typer.echo(f"report written to {files['report']}", err=True)
    if as_json:
        typer.echo(json.dumps(evaluation.to_json(), ensure_ascii=False))
    else:
        typer.echo(summary_text(evaluation))


def _run(pipeline, gold, squad, beir, mode, retrieval, limit, seed, split, index, threshold, batch_size, tune):
    from rag.evaluation import benchmarks as B

    if gold is not None:
        from rag.evaluation.datasets import sample_indices
        from rag.evaluation.gold import load_gold

        questions = load_gold(gold)
        questions = [questions[i] for i in sample_indices(len(questions), limit, seed)]
        return B.evaluate_gold(pipeline, questions, mode=mode, batch_size=batch_size or 1, threshold=threshold, source=str(gold))
    if squad is not None:
        from rag.evaluation.datasets import load_squad

        data = load_squad(squad, limit, seed)
        if mode == "reader":
            return B.evaluate_squad_reader(pipeline, data, batch_size=batch_size or 32, threshold=threshold, source=str(squad))
        return B.evaluate_squad_open(pipeline, data, index_dir=index, mode=retrieval, batch_size=batch_size or 32,
                                     threshold=threshold, source=str(squad))
    from rag.evaluation.datasets import load_beir

    data = load_beir(beir, split, limit, seed)
    if tune:
        from rag.evaluation.tuning import tune_fusion

        table = tune_fusion(pipeline, data, index_dir=index)
        typer.echo(json.dumps(table, ensure_ascii=False))
        return None
    return B.evaluate_beir(pipeline, data, mode=mode or "hybrid", index_dir=index, batch_size=batch_size or 64, source=str(beir))


def run_context() -> dict:
    """Date and machine, for results tables."""
    import platform

    from rag.host import cpu_model, usable_cores

    return {"date": time.strftime("%Y-%m-%d"), "machine": f"{cpu_model()}, {usable_cores()} cores, {platform.system()} {platform.machine()}"}


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None


KEY_ORDER = ("questions", "em", "f1", "has_answer_em", "has_answer_f1", "no_answer_accuracy", "f1_no_threshold",
             "best_f1", "best_f1_threshold", "recall@1", "recall@5", "recall@20", "mrr@5", "paragraph_recall@5",
             "citation_accuracy", "ndcg@10", "recall@100", "mrr@10", "queries", "p50_ms", "p95_ms")


def summary_text(evaluation) -> str:
    m, c = evaluation.metrics, evaluation.config
    head = f"{evaluation.kind} {c.get('mode', '')}: {c.get('dataset', '')}"
    who = ", ".join(f"{k} {c[k]}" for k in ("reader", "encoder", "retrieval_mode", "threshold") if c.get(k) is not None)
    lines = [head, who] if who else [head]
    for key in KEY_ORDER:
        if m.get(key) is not None:
            lines.append(f"  {key:<20} {m[key]}")
    if m.get("categories"):
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in m["categories"].items()))
    lines.append(f"  wall time {evaluation.timings_s.get('total', 0):.1f} s")
    if c.get("documents_not_in_index"):
        from rag.evaluation.benchmarks import missing_documents_note

        lines.extend(missing_documents_note(c))
    return "\n".join(lines)
