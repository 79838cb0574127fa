"""Damaged derived files are rebuilt at load (issue 20, item 9): a tantivy panic on a truncated
.term file stopped the server from starting; a truncated vectors.npy left /readyz at 200 while
every dense search answered 500; a garbled dense/ raised UnicodeDecodeError."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.errors import IndexDamaged
from rag.pipeline import Pipeline
from rag.store import lexical
from rag.store.corpus_index import CorpusIndex
from rag.store.segments import SEGMENTS_DIR

QUESTION = "Who was NATO's first Secretary General?"


def _restart(pipeline: Pipeline) -> Pipeline:
    """A new process on the same index (a server restart)."""
    fresh = Pipeline(pipeline.settings)
    fresh.warm_up()
    return fresh


def _segment(pipeline: Pipeline) -> Path:
    return next((pipeline.index_dir / SEGMENTS_DIR).glob("s-*"))


def _client(pipeline: Pipeline) -> TestClient:
    return TestClient(create_app(pipeline.settings, pipeline), raise_server_exceptions=False, base_url="http://127.0.0.1:8000")


def _searches_work(pipeline: Pipeline) -> None:
    with _client(pipeline) as client:
        assert client.get("/readyz").status_code == 200
        for mode in ("hybrid", "dense", "bm25"):
            r = client.post("/v1/search", json={"query": QUESTION, "mode": mode})
            assert r.status_code == 200 and r.json()["passages"], (mode, r.text)
        assert "Ismay" in client.post("/v1/ask", json={"question": QUESTION}).json()["answers"][0]["text"]


def test_a_term_file_that_makes_tantivy_panic_is_rebuilt_at_start(fake_pipeline):
    term = next((fake_pipeline.index_dir / lexical.FOLDER).glob("*.term"))
    term.write_bytes(term.read_bytes()[:4])  # 4 bytes: tantivy panics ("start <= orig_range.end")
    with pytest.raises(ValueError, match="panicked"):
        lexical.open_index(fake_pipeline.index_dir)  # the PanicException (a BaseException) is caught, precisely
    restarted = _restart(fake_pipeline)
    assert not restarted.index.lexical_stale
    _searches_work(restarted)


@pytest.mark.parametrize("damage", ["truncated vectors.npy", "empty vectors.npy"])
def test_damaged_vectors_are_recomputed_from_sqlite(fake_pipeline, damage: str):
    folder = _segment(fake_pipeline)
    vectors = folder / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2] if damage.startswith("truncated") else b"")
    before = fake_pipeline.index.version
    restarted = _restart(fake_pipeline)
    assert restarted.index.version == before + 1  # the repair commits a version naming the new segment
    assert not folder.exists()
    _searches_work(restarted)


def test_a_garbled_dense_folder_is_rebuilt_from_the_intact_vectors_without_the_encoder(fake_pipeline, monkeypatch):
    folder = _segment(fake_pipeline)
    for path in (folder / "dense").iterdir():
        path.write_bytes(b"\xff\xfe garbled " * 20)  # was: UnicodeDecodeError on every load
    restarted = Pipeline(fake_pipeline.settings)
    restarted.encoder.warm_up()

    def no_embedding(*args, **kwargs):
        raise AssertionError("the intact vectors.npy must be reused")

    monkeypatch.setattr(restarted.encoder, "encode", no_embedding)
    restarted.reader.warm_up()
    restarted.models_ready = True
    restarted.reload()
    monkeypatch.undo()
    _searches_work(restarted)


def test_without_an_encoder_of_the_index_s_model_the_damage_is_refused_naming_the_file(fake_pipeline):
    vectors = _segment(fake_pipeline) / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:200])
    with pytest.raises(IndexDamaged, match=r"vectors\.npy is damaged"):
        CorpusIndex.load(fake_pipeline.index_dir)
    from rag.embedding import HashingEncoder

    with pytest.raises(IndexDamaged, match=r"vectors\.npy is damaged.*cannot be recomputed.*hashing:64"):
        CorpusIndex.load(fake_pipeline.index_dir, repair_with=HashingEncoder(64))
    from rag.api.errors import public_detail, status_for

    refused = IndexDamaged(f"the vector segment file {vectors} is damaged")
    assert status_for(refused) == 503
    assert "damaged" in public_detail(refused) and str(vectors) not in public_detail(refused)  # the log names it


def test_readyz_is_503_when_a_search_fails(fake_pipeline, monkeypatch):
    with _client(fake_pipeline) as client:
        assert client.get("/readyz").status_code == 200
        index = fake_pipeline.index

        def broken(*args, **kwargs):
            raise ValueError("could not broadcast input array from shape (0,) into shape (256,)")

        monkeypatch.setattr(index.dense, "vectors_of", broken)
        fake_pipeline._probe = None  # a new snapshot is probed at once; this one is forced here
        r = client.get("/readyz")
        assert r.status_code == 503 and "search" in r.json()["detail"]
