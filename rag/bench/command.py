"""`rag bench`: run the benchmarks and rewrite eval/BENCHMARKS.md (see rag/bench/report.py).

Sections (``--section``, repeatable; default all):

* ``build``: index build throughput and peak memory on SQuAD v1.1 dev paragraphs;
* ``latency``: in-process search/ask latency on the default corpus and on SQuAD;
* ``http``: `rag serve` on loopback, sequential and concurrent clients, batch endpoint;
* ``scale``: vector search latency, recall and memory from 10^3 to 10^6 passages;
* ``writes``: upload and delete of one small document at each size (indexes of 10^5 passages and
  more are built once in ``--keep`` and reused);
* ``service``: `rag serve` over the largest ``writes`` index with the real encoder: start-up,
  memory, /v1/search over HTTP, upload and delete through the API.

Each section writes ``<out>/bench/<section>.json``; the report is rebuilt from whatever
section files exist, so sections can be re-run one at a time.
"""
from __future__ import annotations

import shlex
import time
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.bench.common import CORPUS_QUESTIONS, machine, write_json
from rag.settings import DEFAULT_EMBEDDING_MODEL

DEFAULT_SQUAD = Path("../shared/data/squad-v1.1/dev-v1.1.json")
DEFAULT_SIZES = "1000,10000,100000,1000000"
KEEP_FROM = 100_000  # writes indexes this large are kept in --keep (10^6: ~15 min to build on 2 cores)


def bench_command(
    section: Annotated[Optional[list[str]], typer.Option("--section", "-s", help="build | latency | http | scale | writes (repeatable) [default: all]")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for BENCHMARKS.md and bench/*.json, *.png")] = Path("eval"),
    squad: Annotated[Path, typer.Option("--squad", help="SQuAD v1.1 dev JSON (read, never copied)")] = DEFAULT_SQUAD,
    model: Annotated[str, typer.Option("--model", help="Embedding model")] = DEFAULT_EMBEDDING_MODEL,
    reader: Annotated[Optional[str], typer.Option("--reader", help="Reader [default: the service default]")] = None,
    corpus: Annotated[Path, typer.Option("--corpus", help="The default corpus folder")] = Path("corpus"),
    sizes: Annotated[str, typer.Option("--sizes", help="Corpus sizes for the scale section")] = DEFAULT_SIZES,
    text_max: Annotated[int, typer.Option("--text-max", help="Largest size for the full-text hybrid part of scale")] = 100_000,
    requests: Annotated[int, typer.Option("--requests", help="Requests per HTTP level / timed calls in-process")] = 200,
    concurrency: Annotated[str, typer.Option("--concurrency", help="HTTP client counts")] = "1,8,32",
    squad_limit: Annotated[Optional[int], typer.Option("--squad-limit", help="Use only the first N SQuAD paragraphs")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Cache of encoded vectors")] = Path.home() / ".cache" / "rag-bench",
    backend: Annotated[str, typer.Option("--backend", help="writes: faiss (the index folder) or milvus (Milvus Lite)")] = "faiss",
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip rewriting BENCHMARKS.md")] = False,
    keep: Annotated[Optional[Path], typer.Option("--keep", help="writes/service: build indexes of >= 10^5 passages here once and reuse them (never inside the repository)")] = None,
) -> None:
    """Measure build, latency, HTTP throughput and scale; rewrite <out>/BENCHMARKS.md."""
    from rag.bench.report import SECTIONS, render

    chosen = section or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise typer.BadParameter(f"unknown section {', '.join(unknown)}; use {', '.join(SECTIONS)}")
    if {"build", "latency", "scale", "writes", "service"} & set(chosen) and not squad.is_file():
        raise typer.BadParameter(f"SQuAD v1.1 dev not found at {squad}: pass --squad PATH")
    folder = out / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    common = ["--out", str(out), "--squad", str(squad), "--model", model]
    common += ["--reader", reader] if reader else []
    common += ["--squad-limit", str(squad_limit)] if squad_limit else []
    commands = {
        "build": _command("build", common),
        "latency": _command("latency", common + ["--requests", str(requests)]),
        "http": _command("http", common + ["--requests", str(requests), "--concurrency", concurrency]),
        "scale": _command("scale", common + ["--sizes", sizes, "--text-max", str(text_max)]),
        "writes": _command("writes", common + ["--sizes", sizes] + (["--keep", str(keep)] if keep else [])),
        "service": _command("service", common + ["--sizes", sizes, "--requests", str(requests)] + (["--keep", str(keep)] if keep else [])),
    }
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        squad_index = work / "squad-index"
        corpus_index = work / "corpus-index"
        if "build" in chosen:
            _section_build(folder, squad, model, squad_limit, squad_index, commands["build"])
        if {"latency", "http"} & set(chosen):
            _ensure_index(corpus_index, [corpus], model)
        if "latency" in chosen:
            if not index_exists(squad_index):
                _build_squad_index(squad, model, squad_limit, squad_index)
            _section_latency(folder, corpus_index, squad_index, squad, model, reader, requests, commands["latency"], cache)
        if "http" in chosen:
            levels = [int(c) for c in concurrency.split(",") if c.strip()]
            _section_http(folder, corpus_index, model, reader, levels, requests, work, commands["http"])
        if "scale" in chosen:
            _section_scale(folder, squad, model, [int(float(s)) for s in sizes.split(",") if s.strip()], text_max, cache, commands["scale"])
        if "writes" in chosen and backend == "milvus":
            from rag.bench.milvus_writes import section_milvus_writes

            section_milvus_writes(folder, squad, model, [int(float(s)) for s in sizes.split(",") if s.strip()], cache,
                                  commands["writes"] + " --backend milvus")
        elif "writes" in chosen:
            _section_writes(folder, squad, model, [int(float(s)) for s in sizes.split(",") if s.strip()], cache, commands["writes"], keep)
        if "service" in chosen:
            _section_service(folder, squad, model, max(int(float(s)) for s in sizes.split(",") if s.strip()), cache, commands["service"],
                             keep or work, requests, reader)
    if not no_report:
        target = render(folder, out / "BENCHMARKS.md")
        typer.echo(f"wrote {target}")


def index_exists(index_dir: Path) -> bool:
    from rag.store.corpus_index import index_exists as exists  # faiss and numpy only when needed

    return exists(index_dir)


def _command(section: str, options: list[str]) -> str:
    return "rag bench --section " + section + " " + " ".join(shlex.quote(o) for o in options)


def _ensure_index(index_dir: Path, paths: list[Path], model: str) -> None:
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    if index_exists(index_dir):
        return
    Pipeline(Settings(index_dir=index_dir, embedding_model=model, reader="heuristic")).index_paths(paths)


def _build_squad_index(squad: Path, model: str, limit: int | None, index_dir: Path) -> dict:
    from rag.bench.build import bench_build

    return bench_build(squad, model, limit, index_dir=index_dir)


def _section_build(folder: Path, squad: Path, model: str, limit: int | None, index_dir: Path, command: str) -> None:
    typer.echo("build: indexing SQuAD paragraphs in a child process ...")
    result = _build_squad_index(squad, model, limit, index_dir)
    write_json(folder / "build.json", {"machine": machine(), "command": command, "squad": result})
    typer.echo(f"  {result['paragraphs_per_s']} paragraphs/s, peak RSS {result['peak_rss_mb']} MB")


def _section_latency(folder: Path, corpus_index: Path, squad_index: Path, squad: Path, model: str, reader: str | None,
                     requests: int, command: str, cache: Path) -> None:
    from rag.bench.data import load_squad
    from rag.bench.latency import bench_in_process

    typer.echo("latency: in-process search and ask ...")
    rows = {"default corpus": bench_in_process(corpus_index, CORPUS_QUESTIONS, requests, model, reader)}
    sample = load_squad(squad)
    questions = sample.questions[:: max(1, len(sample.questions) // requests)][:requests]
    rows["SQuAD dev paragraphs"] = bench_in_process(squad_index, questions, requests, model, reader)
    write_json(folder / "latency.json", {"machine": machine(), "command": command, "corpora": rows})
    for name, row in rows.items():
        typer.echo(f"  {name}: search p50 {row['search_ms']['p50']} ms, ask p50 {row['ask_ms']['p50']} ms")


def _section_http(folder: Path, corpus_index: Path, model: str, reader: str | None, levels: list[int], requests: int,
                  work: Path, command: str) -> None:
    from rag.bench.http import bench_http
    from rag.store.corpus_index import CorpusIndex

    typer.echo(f"http: rag serve on loopback, clients {levels} ...")
    env = {"RAG_EMBEDDING_MODEL": model}
    if reader:
        env["RAG_READER"] = reader
    result = bench_http(corpus_index, CORPUS_QUESTIONS, levels, requests, env, work / "server.log")
    index = CorpusIndex.load(corpus_index)
    log = (work / "server.log").read_text(errors="replace")
    used_reader = "heuristic" if "using the heuristic reader" in log or reader == "heuristic" else (reader or "auto (span)")
    result.update({"machine": machine(), "command": command, "corpus": "default corpus", "passages": len(index), "reader": used_reader})
    write_json(folder / "http.json", result)
    for row in result["levels"]:
        typer.echo(f"  {row['path']} x{row['concurrency']}: p50 {row['latency_ms'].get('p50')} ms, {row['requests_per_s']}/s")


def _section_scale(folder: Path, squad: Path, model: str, sizes: list[int], text_max: int, cache: Path, command: str) -> None:
    import numpy as np

    from rag.bench.data import DEFAULT_BANDWIDTH, SyntheticCorpus, cached_vectors, load_squad
    from rag.bench.scale import bench_text, bench_vectors
    from rag.embedding import load_encoder
    from rag.store.faiss_store import FaissConfig
    from rag.settings import Settings

    typer.echo(f"scale: sizes {sizes} ...")
    sample = load_squad(squad)
    encoder = load_encoder(Settings(embedding_model=model, encoder_runtime="torch"))
    real = cached_vectors(cache, encoder, sample.paragraphs, "squad-paragraphs")
    picks = sorted(np.random.default_rng(0).choice(len(sample.questions), min(1000, len(sample.questions)), replace=False).tolist())
    questions = [sample.questions[i] for i in picks]
    queries = cached_vectors(cache, encoder, questions, "squad-questions")
    synthetic = SyntheticCorpus(real, DEFAULT_BANDWIDTH)
    result = {"machine": machine(), "command": command, "vectors": [], "text": [],
              "description": (f"{len(real):,} real SQuAD paragraph vectors ({encoder.name}) plus synthetic vectors drawn around them "
                              f"(bandwidth {DEFAULT_BANDWIDTH}, rag/bench/data.py); {len(questions):,} real SQuAD questions as queries "
                              "(recall over all of them, latency over the first 200, one query per call).")}
    for size in sizes:
        row = bench_vectors(synthetic, queries, size, FaissConfig())
        result["vectors"].append(row)
        write_json(folder / "scale.json", result)
        typer.echo(f"  {size:,} vectors: {row['index']}, p50 {row['search_ms']['p50']} ms, recall@10 {row['recall_at_10']}, built in {row['build_s']} s")
    for size in [s for s in sizes if s <= text_max]:
        row = bench_text(sample, synthetic, encoder, size, questions)
        result["text"].append(row)
        write_json(folder / "scale.json", result)
        typer.echo(f"  {size:,} passages, full hybrid path: p50 {row['hybrid_without_encoding_ms']['p50']} ms")


def _section_writes(folder: Path, squad: Path, model: str, sizes: list[int], cache: Path, command: str, keep: Path | None = None) -> None:
    from rag.bench.data import squad_with_synthetic
    from rag.bench.writes import bench_writes

    typer.echo(f"writes: sizes {sizes} ...")
    sample, synthetic = squad_with_synthetic(squad, model, cache)
    rows: list[dict] = []
    result = {"machine": machine(), "command": command, "rows": rows,
              "description": ("One SQuAD dev paragraph per document (cycled to the size; a long one is two passages), synthetic "
                              "vectors drawn around the real embedding of each text's paragraph; 20 rounds of: upload one "
                              "3-paragraph document, delete it, compact as the policy asks (inline), alternating between the sizes.  Times are the storage only "
                              "(chunking, segment, SQLite commit, BM25 sync, snapshot reload), no encoder.")}
    rows.extend(bench_writes(sample, synthetic, sizes, questions=sample.questions[:200], keep=keep, keep_from=KEEP_FROM, model=model))
    write_json(folder / "writes.json", result)
    for row in rows:
        typer.echo(f"  {row['passages']:,} passages: upload p50 {row['upload_ms']['p50']} ms, delete p50 {row['delete_ms']['p50']} ms")


def _section_service(folder: Path, squad: Path, model: str, size: int, cache: Path, command: str, keep: Path,
                     requests: int, reader: str | None) -> None:
    from rag.bench.data import squad_with_synthetic
    from rag.bench.service import bench_service
    from rag.bench.writes import reuse_or_build

    sample, synthetic = squad_with_synthetic(squad, model, cache)
    period = len(sample.paragraphs)
    step = max(1, len(sample.questions) // requests)
    questions, answers = sample.questions[::step][:requests], sample.answers[::step][:requests]
    env = {"RAG_EMBEDDING_MODEL": model, **({"RAG_READER": reader} if reader else {})}
    rows: list[dict] = []
    result = {"machine": machine(), "command": command, "rows": rows, "description": (
        "rag serve (real encoder and reader) over SQuAD dev paragraph texts: the 2,067 paragraphs with their real embeddings, "
        f"and cycled to {size:,} documents with vectors drawn around each text's own paragraph embedding (the index of the "
        f"writes section); /v1/search in hybrid mode, top 5, {len(questions)} SQuAD dev questions one at a time over HTTP; "
        "recall@5: a returned passage contains a gold answer; 20 uploads and deletes of one 3-paragraph document through the API.")}
    for documents in sorted({period, size}):
        texts = [sample.paragraphs[i % period] for i in range(documents)]
        titles = [sample.titles[i % period] for i in range(documents)]
        typer.echo(f"service: {documents:,} documents, index in {keep} ...")
        keep.mkdir(parents=True, exist_ok=True)
        _, index, build_s = reuse_or_build(keep / f"writes-{documents}", texts, titles, lambda n=documents: synthetic.vectors(n, cycled=True), model, period)
        passages = len(index)
        del index
        # What of the start-up is the index's: opening it in a fresh snapshot (the rest is models).
        from rag.store import database
        from rag.store.corpus_index import CorpusIndex, database_path

        database.create(database_path(keep / f"writes-{documents}")).close()  # indexes added since the build, not timed
        started = time.perf_counter()
        CorpusIndex.load(keep / f"writes-{documents}", expected_model=model)
        load_s = round(time.perf_counter() - started, 3)
        row = bench_service(keep / f"writes-{documents}", questions, answers, env, keep / f"server-{documents}.log")
        row.update({"documents": documents, "passages": passages, "bulk_build_s": build_s, "index_open_s": load_s})
        rows.append(row)
        write_json(folder / "service.json", result)
        typer.echo(f"  ready in {row['startup_to_readyz_s']} s, RSS {row['memory_after_writes']['rss_mb']} MB, "
                   f"search p50 {row['search_ms']['p50']} ms, recall@5 {row['hybrid_recall_at_5']}, upload p50 {row['upload_ms']['p50']} ms")
