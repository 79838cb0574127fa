"""Shared fixtures: a fast pipeline on the hashing encoder, and one real-MiniLM pipeline per session.

Helpers that test modules call directly (``indexed_pipeline``, ``serve``, ``assert_offsets``,
``needs_chromium``) are in support.py.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.pipeline import Pipeline
from rag.settings import Settings
from support import CHROMIUM, CORPUS, MINILM, indexed_pipeline

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
