"""The `rag` command: index, ask, serve (thin shells over rag.pipeline)."""
from __future__ import annotations

import functools
import json
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag import __version__
from rag.errors import RagError
from rag.extras import MissingExtra, require, require_vector_backend
from rag.settings import RetrievalMode, Settings, user_runtime_dir

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


def _version(show: bool) -> None:
    if show:
        typer.echo(f"rag {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")] = False,
) -> None:
    """Extractive question answering over your documents, with exact citations."""


class _Held(logging.Handler):
    """Holds the package's log records while `rag index` runs, so skips are reported once."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _release(held: _Held, reported: list[str]) -> None:
    """Pass on the held records, except those about a file the report lists as skipped."""
    root = logging.getLogger()
    for record in held.records:
        if record.levelno >= root.getEffectiveLevel() and not any(r in record.getMessage() for r in reported):
            root.handle(record)


@app.command("index")
def index_command(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders to index [default: corpus/]")] = None,
    index: IndexOpt = None,
    model: ModelOpt = None,
    only: Annotated[bool, typer.Option("--only", help="Keep only these files in the index: remove every other "
                                                       "document (the example corpus, other folders, uploads)")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Then keep watching the folders: index new and changed files, "
                                                         "remove deleted ones, until Ctrl+C")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build or update the index: re-embeds only new or changed documents, drops deleted ones.

    Documents from other folders (the example corpus at first) and uploads stay unless --only is given."""
    from rag.pipeline import Pipeline

    _logging(verbose)
    settings = make_settings(index_dir=index, embedding_model=model, reader="heuristic")
    paths = paths or [settings.corpus_dir]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        # Indexing a missing folder would sync the index to "nothing there" and empty it.
        _fail(RagError(f"no such file or folder: {', '.join(missing)}"))
    if watch:
        _watch_folders(settings, paths, only)
        return
    if not verbose:
        # Parser libraries warn without naming the file; the "skipped FILE: reason" line says it.
        for name in ("pypdf", "pdfminer", "pdfplumber"):
            logging.getLogger(name).setLevel(logging.ERROR)
    held, package_log = _Held(), logging.getLogger("rag")
    report = None
    try:
        require_vector_backend(settings.vector_backend, settings.milvus_uri)
        package_log.addHandler(held)
        package_log.propagate = False
        pipeline = Pipeline(settings)
        report = pipeline.index_paths(paths, only=only)
        others = pipeline.documents_outside(paths)
    except RagError as exc:
        _fail(exc)
    finally:
        package_log.removeHandler(held)
        package_log.propagate = True
        _release(held, [path for path, _ in report.skipped] if report else [])
    for path, reason in report.skipped:
        typer.secho(f"skipped {path}: {reason}", fg=typer.colors.YELLOW, err=True)
    typer.echo(
        f"indexed {report.documents} documents, {report.passages} passages into {settings.index_dir} "
        f"(added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
        f"removed {len(report.removed)}; embedded {report.embedded_passages} passages in {report.seconds:.1f}s)"
    )
    if others:
        # A newcomer's first `rag index ~/notes` kept the two example documents, and answers
        # came from them too (issue 21).
        shown = ", ".join(info["document_id"] for info in others[:3]) + (", ..." if len(others) > 3 else "")
        typer.secho(
            f"the index also holds {len(others)} other document{'s' if len(others) != 1 else ''} ({shown}), "
            f"and answers come from them too: `rag index {' '.join(_quoted(p) for p in paths)} --only` keeps only these files; "
            "`--index DIR` on every command keeps a separate index",
            fg=typer.colors.YELLOW,
        )


def _watch_folders(settings, paths: list[Path], only: bool) -> None:
    """`rag index --watch`: sync, then sync again after every batch of changes (rag/watch.py)."""
    from rag.pipeline import Pipeline
    from rag.watch import FolderWatcher, describe

    try:
        require_vector_backend(settings.vector_backend, settings.milvus_uri)
        watcher = FolderWatcher(Pipeline(settings), paths, only=only, on_report=lambda r: typer.echo(describe(r)))
    except RagError as exc:
        _fail(exc)
    typer.echo(f"watching {', '.join(map(str, paths))} (Ctrl+C stops)", err=True)
    try:
        watcher.run()
    except KeyboardInterrupt:
        typer.echo("stopped watching", err=True)


def _quoted(path: Path) -> str:
    return shlex.quote(str(path))


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question, in quotes")],
    index: IndexOpt = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, max=100)] = None,
    mode: Annotated[Optional[RetrievalMode], typer.Option("--mode", help="Retrieval mode [default: RAG_RETRIEVAL_MODE]")] = None,
    reader: ReaderOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the same JSON as POST /v1/ask")] = False,
    paragraph: Annotated[bool, typer.Option("--paragraph", help="Show the whole cited paragraph, not just the sentence around the answer")] = False,
    local: Annotated[bool, typer.Option("--local", help="Load the models here even when `rag serve` runs on this index")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Answer a question (through a running `rag serve` on the same index when there is one)."""
    from rag import running

    _logging(verbose)
    settings = make_settings(index_dir=index, reader=reader)
    if not question.strip():
        _fail(RagError("the question is empty"))
    result = None
    server = None if local else running.find_server(user_runtime_dir(), settings.index_dir, settings.reader, settings.answer_threshold)
    if server is not None:
        result = running.ask_remote(server.url, question, top_k, mode, settings.api_key.get_secret_value() or None)
        if result is None:
            typer.echo(f"`rag serve` at {server.url} did not answer; loading the models here", err=True)
    elif not local:
        typer.echo(f"no `rag serve` running on {settings.index_dir}: loading the models here (~10 s; "
                   "a running `rag serve` answers in ~0.1 s)", err=True)
    if result is None:
        result = _ask_locally(settings, question, top_k, mode)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    _print_answers(result, paragraph=paragraph)


def _ask_locally(settings: Settings, question: str, top_k: int | None, mode: str | None) -> dict:
    from rag.pipeline import Pipeline

    try:
        require_vector_backend(settings.vector_backend, settings.milvus_uri)
        pipeline = Pipeline(settings)
        pipeline.warm_up()
        from rag.api.schemas import ask_response

        return ask_response(pipeline.ask(question, top_k=top_k, mode=mode))
    except RagError as exc:
        _fail(exc)
    raise AssertionError("unreachable")  # _fail exits


# The excerpt under an answer: its sentence, cut to this many characters around the answer.
EXCERPT_CHARS = 240


def excerpt(answer: dict) -> str:
    """The sentence around the answer on one line: within the answer's own line of the paragraph
    (a list paragraph has no sentence ends, and its "sentence" was all 12 lines), cut to about
    ``EXCERPT_CHARS`` around the answer with "..." where text is left out."""
    text, c = answer["citation"]["paragraph_text"], answer["citation"]
    a_start, a_end = c["answer_start"], c["answer_end"]
    start, end = answer.get("context_start", 0), answer.get("context_end", 0)
    if end <= start:
        start, end = 0, len(text)
    start = max(start, text.rfind("\n", 0, a_start) + 1)
    newline = text.find("\n", a_end)
    end = min(end, newline if newline >= 0 else len(text))
    room = max(0, EXCERPT_CHARS - (a_end - a_start)) // 2
    cut_start, cut_end = max(start, a_start - room), min(end, a_end + room)
    if cut_start > start:  # whole words only
        space = text.find(" ", cut_start, a_start)
        cut_start = space + 1 if space >= 0 else cut_start
    if cut_end < end:
        space = text.rfind(" ", a_end, cut_end)
        cut_end = space if space >= 0 else cut_end
    shown = " ".join(text[cut_start:cut_end].split())
    return ("..." if cut_start > start else "") + shown + ("..." if cut_end < end else "")


def _print_answers(result: dict, paragraph: bool = False) -> None:
    if not result["answers"]:
        no_answer = result.get("no_answer") or {}
        typer.echo(f"No answer: {no_answer.get('message') or no_answer.get('reason') or 'nothing found'}")
        return
    for n, answer in enumerate(result["answers"], start=1):
        c = answer["citation"]
        where = f"paragraph {c['paragraph_index']}"
        if c.get("pages"):
            where = f"p. {', '.join(str(p) for p in c['pages'])}, " + where
        typer.secho(f"{n}. {answer['text']}", bold=True)
        typer.echo(f"   score {answer['score']:.3f} | {c['title']} ({c['document_id']}), {where}, chars {c['answer_start']}-{c['answer_end']}")
        if paragraph:
            for line in c["paragraph_text"].splitlines():
                typer.echo(f"   {line}")
        else:
            typer.echo(f"   \u201c{excerpt(answer)}\u201d")


@app.command("serve")
def serve_command(
    host: Annotated[Optional[str], typer.Option("--host", help="[env RAG_HOST, default 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="[env RAG_PORT, default 8000; 0 = any free port]")] = None,
    index: IndexOpt = None,
    build: Annotated[bool, typer.Option("--build/--no-build", help="Index the corpus folder first when no index exists")] = True,
    watch: Annotated[Optional[list[Path]], typer.Option("--watch", help="Keep the index in step with this folder "
                                                                        "(repeatable; instead of the corpus build)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start the HTTP service: the chat page at /, the API docs at /docs."""
    from rag.serving import serve

    settings = make_settings(host=host, index_dir=index)
    if "log_json" not in settings.model_fields_set:
        # Human-readable lines on a terminal; JSON lines (one per event and request) for log
        # collectors, i.e. when stderr is not a terminal, unless RAG_LOG_JSON says otherwise.
        settings = settings.model_copy(update={"log_json": not sys.stderr.isatty()})
    if port is not None:  # 0 is allowed here (a free port), not in RAG_PORT
        settings = settings.model_copy(update={"port": port})
    try:
        require_vector_backend(settings.vector_backend, settings.milvus_uri)
        serve(settings, build=build, verbose=verbose, watch=watch)
    except RagError as exc:
        _fail(exc)


@app.command("mcp")
def mcp_command(
    index: IndexOpt = None,
    model: ModelOpt = None,
    reader: ReaderOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the index to MCP clients (Claude Desktop, Cursor, VS Code) over stdio: tools ask,
    search, get_document, list_documents (docs/mcp.md). `rag serve` also answers MCP at /mcp."""
    _logging(verbose)  # stderr: stdout carries the protocol
    settings = make_settings(index_dir=index, embedding_model=model, reader=reader)
    try:
        require("mcp", "rag mcp", ("mcp",))
        require_vector_backend(settings.vector_backend, settings.milvus_uri)
        from rag.mcp_server import run_stdio

        run_stdio(settings)
    except RagError as exc:
        _fail(exc)


# Registered after the core commands so `rag --help` lists index, ask and serve first; these
# modules import torch, faiss and friends only inside the command bodies.
from rag.bench.command import bench_command  # noqa: E402
from rag.evaluation.command import eval_command  # noqa: E402
from rag.training.train import train_reader_command  # noqa: E402



def _needs(extra: str, purpose: str, command: Callable) -> Callable:
    """``command``, preceded by a check for the optional extra it imports (one clear line if absent)."""

    @functools.wraps(command)  # typer reads the options from the wrapped signature
    def checked(*args, **kwargs):
        try:
            require(extra, purpose)
        except MissingExtra as exc:
            _fail(exc)
        return command(*args, **kwargs)

    return checked


app.command("eval")(_needs("eval", "rag eval", eval_command))
app.command("bench")(_needs("bench", "rag bench", bench_command))
app.command("train-reader")(train_reader_command)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
