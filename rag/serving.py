"""`rag serve`: logging for a terminal or a log collector, the start-up message, and registration.

Once the models and the index are loaded and the socket listens, the service says where to go
(the chat page and the API docs) and registers itself for ``rag ask`` (rag/running.py); the
registration is removed when the service stops.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer
import uvicorn

from rag.api.connections import check_file_limit
from rag.api.server_options import uvicorn_options

from rag import running
from rag.errors import NotReady, RagError
from rag.settings import Settings, user_runtime_dir

log = logging.getLogger("rag.serve")

# Terminal lines: time, level, message ("12:00:01 INFO    GET /v1/ask 200 41.3ms").
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


def configure_plain_logging(level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, plus a hook that runs once the app has started and the socket listens."""

    def __init__(self, config: uvicorn.Config, settings: Settings, pipeline) -> None:
        super().__init__(config)
        self.settings = settings
        self.pipeline = pipeline
        self.registration = None
        self.watcher: Any = None  # rag.watch.FolderWatcher with --watch, stopped on shutdown

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit or not self.servers:
            return
        port = self.servers[0].sockets[0].getsockname()[1]  # the real one when --port 0
        url = running.local_url(self.settings.host, port)
        info = running.ServerInfo(url, os.getpid(), str(self.settings.index_dir.resolve()),
                                  self.settings.reader, self.settings.answer_threshold)
        try:
            self.registration = running.register(user_runtime_dir(), info, port)
        except OSError as exc:  # rag ask then loads locally; the service itself is fine
            log.warning("could not register for `rag ask` (%s)", exc)
        announce(self.settings, url, self.pipeline)

    async def shutdown(self, sockets=None) -> None:
        # Here rather than after run(): uvicorn re-raises SIGINT/SIGTERM once it has shut down,
        # which ends the process before code after run() would execute.
        self.unregister()
        if self.watcher is not None:  # lets a sync in progress finish (up to 10 s), off the event loop
            await asyncio.to_thread(self.watcher.stop)
        await super().shutdown(sockets=sockets)

    def unregister(self) -> None:
        if self.registration is not None:
            running.unregister(self.registration)
            self.registration = None


def announce(settings: Settings, url: str, pipeline) -> None:
    try:
        index = pipeline.index
        size = f"{len(index.documents)} documents, {len(index)} passages"
    except NotReady:  # no index yet (`rag serve --no-build`): the page says so too
        size = "no index yet"
    except RagError as exc:  # damaged, unreadable, another model's: the service runs, /readyz answers 503
        log.error("the index at %s cannot be loaded: %s", settings.index_dir, exc)
        size = "the index cannot be loaded: see the log"
    if settings.log_json:
        log.info("ready", extra={"chat_url": url + "/", "docs_url": url + "/docs", "index": str(settings.index_dir)})
        return
    typer.echo(
        f"\nrag is ready ({size} in {settings.index_dir})\n"
        f"  chat page: {url}/\n"
        f"  API docs:  {url}/docs\n"
        f"Press Ctrl+C to stop.\n",
        err=True,
    )


def serve(settings: Settings, build: bool = True, verbose: bool = False, watch: list[Path] | None = None) -> None:
    from rag.api.app import create_app
    from rag.api.observability import configure_logging
    from rag.pipeline import Pipeline
    from rag.store.factory import has_index

    level = logging.DEBUG if verbose else logging.INFO
    if settings.log_json:
        configure_logging(True, level)  # one JSON object per line, request ids included
    else:
        configure_plain_logging(level)
    pipeline = Pipeline(settings)
    watcher = None
    if watch:
        # One watcher per index: only this process writes (docs/deploy.md).  Its first sync
        # builds or updates the index before the socket listens; later ones run in its thread,
        # building outside the serving lock, so questions are not blocked.
        from rag.watch import FolderWatcher

        watcher = FolderWatcher(pipeline, watch).start()
        log.info("watching %s: syncing the index with it first", ", ".join(map(str, watch)))
        watcher.synced.wait()
    elif build and not has_index(settings):
        log.info("no index at %s: indexing %s first", settings.index_dir, settings.corpus_dir)
        report = pipeline.index_paths([settings.corpus_dir])
        log.info("indexed %d documents, %d passages", report.documents, report.passages)
    # uvicorn's loggers propagate to the handler set above (log_config=None); its access log is
    # off because the app writes one line per request (logger rag.access, with the request id).
    # Header deadline, no trust in proxy headers, no server banner (rag/api/server_options.py).
    # The open-file limit first: the total connection cap is a share of it (rag/api/connections.py).
    check_file_limit()
    config = uvicorn.Config(create_app(settings, pipeline), **uvicorn_options(settings),
                            log_level="info", log_config=None, access_log=False)
    server = _AnnouncingServer(config, settings, pipeline)
    server.watcher = watcher
    try:
        server.run()
    finally:
        server.unregister()
        if watcher is not None:
            watcher.stop()
