"""Shared fixtures: a fast pipeline on the hashing encoder, and one real-MiniLM pipeline per session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def assert_offsets(result: dict, documents: dict[str, str]) -> None:
    """The offset invariants of every answer in an ask response (dict form)."""
    for answer in result["answers"]:
        c = answer["citation"]
        assert c["paragraph_text"][c["answer_start"] : c["answer_end"]] == answer["text"]
        assert documents[c["document_id"]][c["doc_start"] : c["doc_end"]] == c["paragraph_text"]
        assert answer["text"] in answer["context"]
    for passage in result["passages"]:
        assert documents[passage["document_id"]][passage["doc_start"] : passage["doc_end"]] == passage["text"]


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
    base = tmp_path_factory.mktemp("real")
    corpus = base / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(index_dir=base / "index", corpus_dir=corpus, embedding_model=MINILM)
    pipeline = Pipeline(settings)
    pipeline.warm_up()
    pipeline.index_paths([corpus])
    return pipeline
