"""The same retrieval tests over every backend: FAISS flat, FAISS HNSW, and the whole index in
Milvus Lite (RAG_VECTOR_BACKEND=milvus; its own tests are in test_milvus_index.py).

Milvus Lite (pip package milvus-lite) is started by the tests themselves, embedded, on a file
in a temporary folder; each test uses its own collection alias in it.  The same code reaches a
Milvus cluster by an http:// URI.  The Milvus tests skip, saying why, only when Milvus Lite
cannot start on this machine.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from support import assert_offsets, milvus_lite_database
from rag.ingest import document_from_text
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store.factory import load_index
from rag.store.faiss_store import FaissConfig, FaissStore, ivf_lists, pq_subquantizers
from rag.store.segments import open_store
from rag.api.schemas import ask_response

BACKENDS = ["faiss-flat", "faiss-hnsw", "milvus-lite"]
STORES = ["faiss-flat", "faiss-hnsw"]  # the vector stores of index-folder segments


@pytest.fixture(scope="session")
def milvus_db(tmp_path_factory) -> str:
    return milvus_lite_database(tmp_path_factory, "milvus")


def _settings(backend: str, base: Path, request) -> Settings:
    options: dict = {"faiss_index": "flat"}
    if backend == "faiss-hnsw":
        options = {"faiss_index": "hnsw"}
    elif backend == "milvus-lite":
        # One Milvus Lite file for the session (starting one takes ~1 s); a collection per test.
        options = {"vector_backend": "milvus", "milvus_uri": request.getfixturevalue("milvus_db"),
                   "milvus_collection": f"rag_{os.urandom(4).hex()}"}
    return Settings(index_dir=base / "index", embedding_model="hashing:256", reader="heuristic", **options)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_settings(backend, tmp_path, request) -> Settings:
    return _settings(backend, tmp_path, request)


@pytest.fixture
def pipeline(store_settings: Settings, corpus_dir: Path) -> Pipeline:
    pipeline = Pipeline(store_settings.model_copy(update={"corpus_dir": corpus_dir}))
    pipeline.warm_up()
    pipeline.index_paths([corpus_dir])
    return pipeline


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------ the store on its own
@pytest.mark.parametrize("backend", STORES)
def test_store_finds_exact_neighbours_and_survives_save_load(store_settings: Settings, tmp_path: Path):
    vectors, queries = _unit(300, 32), _unit(5, 32, seed=1)
    store = FaissStore(FaissConfig.from_settings(store_settings))
    store.build(vectors)
    assert len(store) == 300
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    scores, ids = store.search(queries, 10)
    assert ids.shape == (5, 10) and np.array_equal(ids, truth)
    assert np.allclose(scores, np.take_along_axis(queries @ vectors.T, truth, axis=1), atol=1e-4)
    store.save(tmp_path / "dense")
    loaded = open_store(tmp_path / "dense", store.describe(), store_settings)
    assert len(loaded) == 300 and np.array_equal(loaded.search(queries, 10)[1], truth)
    # k beyond the size returns everything; one query as a 1-d vector works too
    assert loaded.search(queries[0], 500)[1].shape == (1, 300)


@pytest.mark.parametrize("backend", STORES)
def test_empty_store(store_settings: Settings):
    store = FaissStore(FaissConfig.from_settings(store_settings))
    store.build(np.zeros((0, 16), dtype=np.float32))
    scores, ids = store.search(_unit(2, 16), 5)
    assert len(store) == 0 and ids.shape[0] == 2 and ids.shape[1] == 0


# ------------------------------------------------------------------ retrieval through the pipeline
@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_finds_the_ismay_paragraph(pipeline: Pipeline, mode: str):
    passages = pipeline.search("NATO first Secretary General Ismay", top_k=3, mode=mode).passages
    assert passages[0].passage.text.startswith("In the words of NATO’s first Secretary General")
    assert [p.rank for p in passages] == [1, 2, 3]
    if mode == "hybrid":
        cfg = pipeline.settings
        assert passages[0].scores.fused == pytest.approx((cfg.bm25_weight + cfg.dense_weight) / (cfg.rrf_k + 1))


def test_same_ranking_as_exact_faiss(pipeline: Pipeline, fake_pipeline: Pipeline):
    for query in ["South Korea NATO partnership", "Indo-Pacific partners summit Washington", "East-West Center"]:
        mine = pipeline.search(query, top_k=10, mode="dense").passages
        exact = fake_pipeline.search(query, top_k=10, mode="dense").passages
        scores = [round(p.scores.dense, 5) for p in exact]
        assert [round(p.scores.dense, 5) for p in mine] == scores
        # Ties (the hashing encoder gives several passages exactly 0) are broken by passage id,
        # and Milvus' ids are hashes (rag/store/milvus_records.py): only untied ranks must agree.
        untied = [i for i, score in enumerate(scores) if scores.count(score) == 1]
        assert [mine[i].passage.text for i in untied] == [exact[i].passage.text for i in untied]


def test_answers_and_changes_without_restart(pipeline: Pipeline, backend: str):
    result = pipeline.ask("Who was NATO's first Secretary General?")
    assert result.answers and "Lord Hastings Lionel Ismay" in result.answers[0].text
    documents = {d: s.document.text for d, s in pipeline.index.documents.items()}
    assert_offsets(ask_response(result), documents)
    question = "What colour is the zorblax beacon?"
    pipeline.upsert_documents([document_from_text("Zorblax Facts\nThe zorblax beacon is colour Ultramarine Blue.", "zorblax")])
    answers = pipeline.ask(question, mode="dense").answers
    assert answers and answers[0].citation.document_id == "zorblax"
    pipeline.delete_document("zorblax")
    assert all(a.citation.document_id != "zorblax" for a in pipeline.ask(question).answers)


def test_manifest_records_backend_and_reload_from_disk(pipeline: Pipeline, backend: str):
    manifest = pipeline.index.manifest
    dense = manifest["dense"]
    assert dense["backend"] == backend.split("-")[0]
    if backend.startswith("faiss"):
        assert dense["index"] == backend.split("-")[1] and "params" in dense
    else:
        alias = pipeline.settings.milvus_collection
        assert dense["alias"] == alias and dense["collection"].startswith(f"{alias}_") and dense["count"] == manifest["passage_count"]
    reopened = load_index(pipeline.settings)
    query = pipeline.encoder.encode_query("NATO first Secretary General")
    assert np.array_equal(reopened.dense.search(query, 5)[1], pipeline.index.dense.search(query, 5)[1])


@pytest.mark.parametrize("backend", ["milvus-lite"])
def test_milvus_keeps_no_index_folder(pipeline: Pipeline, backend: str):
    from rag.store.milvus_store import get_client

    pipeline.upsert_documents([document_from_text("Version 0 text.", "versions")])
    pipeline.upsert_documents([document_from_text("Version 1 text.", "versions")])
    assert not pipeline.index_dir.exists()  # texts, BM25 and vectors all live in Milvus
    live = set(get_client(pipeline.settings.milvus_uri).list_collections())
    assert {pipeline.index.name, pipeline.index.records} <= live  # one long-lived pair; writes add no collection


# ------------------------------------------------------------------ FAISS index choice
def test_auto_chooses_the_index_kind_by_size():
    config = FaissConfig(ivf_min_passages=100, ivfpq_min_passages=1000)
    assert [config.kind_for(n) for n in (10, 100, 999, 1000)] == ["flat", "ivf", "ivf", "ivfpq"]
    assert [FaissConfig().kind_for(n) for n in (10**4, 10**6, 10**7)] == ["flat", "ivf", "ivfpq"]
    assert FaissConfig(kind="hnsw").kind_for(10) == "hnsw"
    assert ivf_lists(10**6) == 1024 and ivf_lists(100) == 2
    assert pq_subquantizers(384, 8) == 48 and pq_subquantizers(100, 8) == 10


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_ivf_recall_and_mmap_loading(tmp_path: Path, kind: str):
    rng = np.random.default_rng(0)
    centers = _unit(50, 32)
    vectors = centers[rng.integers(0, 50, 4000)] + 0.3 * rng.standard_normal((4000, 32)).astype(np.float32) / np.sqrt(32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:50] + 0.05 * _unit(50, 32, seed=3)
    store = FaissStore(FaissConfig(kind=kind))
    store.build(vectors)
    assert store.kind == kind and store.describe()["nlist"] == ivf_lists(4000)
    store.save(tmp_path)
    loaded = FaissStore.load(tmp_path, nprobe=8, mmap=True)
    assert loaded.kind == kind and loaded.config.ivf_nprobe == 8
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = loaded.search(queries, 10)[1]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9
