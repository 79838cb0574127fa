"""The `rag` command: index, ask, serve (thin shells over rag.pipeline)."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.errors import RagError
from rag.settings import Settings

app = typer.Typer(help="Extractive question answering over your documents, with exact citations.", no_args_is_help=True)

IndexOpt = Annotated[Optional[Path], typer.Option("--index", help="Index folder [env RAG_INDEX_DIR, default index/]")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Embedding model name or path [env RAG_EMBEDDING_MODEL]")]
ReaderOpt = Annotated[Optional[str], typer.Option("--reader", help="auto | heuristic | span | HF QA model [env RAG_READER]")]


def make_settings(**overrides) -> Settings:
    """Environment (RAG_*) first, then the flags that were given."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command("index")
def index_command(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders to index [default: corpus/]")] = None,
    index: IndexOpt = None,
    model: ModelOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build or update the index: re-embeds only new or changed documents, drops deleted ones."""
    from rag.pipeline import Pipeline

    _logging(verbose)
    settings = make_settings(index_dir=index, embedding_model=model, reader="heuristic")
    paths = paths or [settings.corpus_dir]
    try:
        report = Pipeline(settings).index_paths(paths)
    except RagError as exc:
        _fail(exc)
    for path, reason in report.skipped:
        typer.secho(f"skipped {path}: {reason}", fg=typer.colors.YELLOW, err=True)
    typer.echo(
        f"indexed {report.documents} documents, {report.passages} passages into {settings.index_dir} "
        f"(added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
        f"removed {len(report.removed)}; embedded {report.embedded_passages} passages in {report.seconds:.1f}s)"
    )


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question, in quotes")],
    index: IndexOpt = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, max=100)] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="bm25 | dense | hybrid")] = None,
    reader: ReaderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the same JSON as POST /v1/ask")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Answer a question from the command line."""
    from rag.pipeline import Pipeline

    _logging(verbose)
    settings = make_settings(index_dir=index, reader=reader)
    try:
        pipeline = Pipeline(settings)
        pipeline.warm_up()
        result = pipeline.ask(question, top_k=top_k, mode=mode)
    except RagError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    if not result.answers:
        typer.echo(f"No answer: {result.no_answer.reason if result.no_answer else 'nothing found'}")
        return
    for n, answer in enumerate(result.answers, start=1):
        c = answer.citation
        typer.secho(f"{n}. {answer.text}", bold=True)
        typer.echo(f"   score {answer.score:.3f} | {c.title} ({c.document_id}), paragraph {c.paragraph_index}, chars {c.answer_start}-{c.answer_end}")
        typer.echo(f"   \u201c{answer.context}\u201d")


@app.command("serve")
def serve_command(
    host: Annotated[Optional[str], typer.Option("--host", help="[env RAG_HOST, default 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="[env RAG_PORT, default 8000]")] = None,
    index: IndexOpt = None,
    build: Annotated[bool, typer.Option("--build/--no-build", help="Index the corpus folder first when no index exists")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start the HTTP service (OpenAPI docs at /docs)."""
    import uvicorn

    from rag.api.app import create_app
    from rag.pipeline import Pipeline
    from rag.store.corpus_index import CURRENT_FILE

    from rag.api.observability import configure_logging

    settings = make_settings(host=host, port=port, index_dir=index)
    _logging(verbose)
    # One JSON object per log line (RAG_LOG_JSON=false for plain text), request ids included.
    configure_logging(settings.log_json, logging.DEBUG if verbose else logging.INFO)
    pipeline = Pipeline(settings)
    if build and not (settings.index_dir / CURRENT_FILE).exists():
        typer.echo(f"no index at {settings.index_dir}: indexing {settings.corpus_dir} first", err=True)
        try:
            report = pipeline.index_paths([settings.corpus_dir])
        except RagError as exc:
            _fail(exc)
        typer.echo(f"indexed {report.documents} documents, {report.passages} passages", err=True)
    # With JSON logs, uvicorn's own loggers propagate to the JSON root handler (log_config=None),
    # and its access log is off because the app writes one line per request with its request id.
    uvicorn.run(create_app(settings, pipeline), host=settings.host, port=settings.port, log_level="info",
                log_config=None if settings.log_json else uvicorn.config.LOGGING_CONFIG,
                access_log=not settings.log_json)


# Registered after the core commands so `rag --help` lists index, ask and serve first; these
# modules import torch, faiss and friends only inside the command bodies.
from rag.bench.command import bench_command  # noqa: E402
from rag.evaluation.command import eval_command  # noqa: E402
from rag.reading.training import train_reader_command  # noqa: E402

app.command("eval")(eval_command)
app.command("bench")(bench_command)
app.command("train-reader")(train_reader_command)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
