"""Shared fixtures: a fast pipeline on the hashing encoder, and one real-MiniLM pipeline per session.

Test modules also import ``indexed_pipeline`` and ``serve`` from here (``from conftest import ...``).
"""
from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# Browser tests drive Debian's chromium (Playwright cannot download its own browsers here).
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def assert_offsets(result: dict, documents: dict[str, str]) -> None:
    """The offset invariants of every answer in an ask response (dict form)."""
    for answer in result["answers"]:
        c = answer["citation"]
        assert c["paragraph_text"][c["answer_start"] : c["answer_end"]] == answer["text"]
        assert documents[c["document_id"]][c["doc_start"] : c["doc_end"]] == c["paragraph_text"]
        assert answer["text"] in answer["context"]
        assert c["paragraph_text"][answer["context_start"] : answer["context_end"]] == answer["context"]
        assert answer["context_start"] <= c["answer_start"] and c["answer_end"] <= answer["context_end"]
    for passage in result["passages"]:
        assert documents[passage["document_id"]][passage["doc_start"] : passage["doc_end"]] == passage["text"]


def indexed_pipeline(base: Path, **overrides) -> Pipeline:
    """The default corpus copied to ``base/corpus`` and indexed into ``base/index``, warmed up.

    Hashing encoder and heuristic reader (~50 ms) unless ``overrides`` (Settings fields) say otherwise.
    """
    corpus = base / "corpus"
    shutil.copytree(CORPUS, corpus)
    fields = {"index_dir": base / "index", "corpus_dir": corpus, "embedding_model": "hashing:256", "reader": "heuristic"}
    pipeline = Pipeline(Settings(**{**fields, **overrides}))
    pipeline.warm_up()
    pipeline.index_paths([corpus])
    return pipeline


@contextmanager
def serve(app, start_timeout: float = 15, **uvicorn_config) -> Iterator[str]:
    """uvicorn in a background thread on a free loopback port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(start_timeout)
        sock.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, one per test module."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def fake_settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index", corpus_dir=corpus_dir, embedding_model="hashing:256", reader="heuristic")


@pytest.fixture
def fake_pipeline(fake_settings: Settings) -> Pipeline:
    """Indexed default corpus, hashing encoder, heuristic reader: builds in ~50 ms."""
    pipeline = Pipeline(fake_settings)
    pipeline.warm_up()
    pipeline.index_paths([fake_settings.corpus_dir])
    return pipeline


@pytest.fixture(scope="session")
def real_pipeline(tmp_path_factory) -> Pipeline:
    """The real MiniLM encoder and the default reader, loaded once per test session."""
    return indexed_pipeline(tmp_path_factory.mktemp("real"), embedding_model=MINILM, reader=Settings().reader)
