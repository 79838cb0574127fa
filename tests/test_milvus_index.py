"""The whole index in Milvus (RAG_VECTOR_BACKEND=milvus, issue 13 requirement 4), on Milvus Lite.

Each test gets its own Milvus Lite file under tmp_path and an index folder that must never be
created: texts, documents, BM25 and vectors all live in Milvus.  Hashing encoder and heuristic
reader, as the other fast tests.  Milvus Lite allows one process per file, so "several
replicas" are two Pipelines in this process sharing the URI (a cluster URI is what separate
processes use; docs/deploy.md).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support import assert_offsets, indexed_pipeline
from rag.api.app import create_app
from rag.api.schemas import ask_response
from rag.errors import IndexIncompatible
from rag.ingest import document_from_text
from rag.pipeline import Pipeline
from rag.settings import Settings

pytest.importorskip("milvus_lite", reason="Milvus Lite is not installed (pip install -e '.[milvus]')")

ZORBLAX = "Zorblax Facts\n\nThe zorblax beacon is colour Ultramarine Blue.\n\nIt was first lit in 1921."


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    """The default corpus indexed into Milvus Lite (hashing encoder, heuristic reader); the
    index folder setting points nowhere, and tests check that nothing is written there."""
    base = tmp_path / "milvus"  # beside fake_pipeline's corpus copy, which one test also uses
    return indexed_pipeline(base, index_dir=tmp_path / "no-index-folder", vector_backend="milvus", milvus_uri=str(base / "milvus.db"))


@pytest.fixture
def settings(pipeline: Pipeline) -> Settings:
    return pipeline.settings


def _rows(pipeline: Pipeline) -> dict[str, set]:
    """{document id: its passage primary keys and record keys} read straight from Milvus."""
    index = pipeline.index
    rows: dict[str, set] = {}
    for r in index.client.query(index.name, filter="id >= 0", output_fields=["id", "document_id"]):
        rows.setdefault(r["document_id"], set()).add(("passage", r["id"]))
    # Document rows only: BM25's df rows (rag/store/milvus_lexical.py) belong to no document.
    for r in index.client.query(index.records, filter='kind != "df"', output_fields=["key", "document_id"]):
        rows.setdefault(r["document_id"], set()).add(("record", r["key"]))
    return rows


def test_build_ask_and_search_with_no_index_folder(pipeline: Pipeline, settings: Settings):
    for mode in ("bm25", "dense", "hybrid"):
        passages = pipeline.search("NATO first Secretary General Ismay", top_k=3, mode=mode).passages
        assert passages[0].passage.text.startswith("In the words of NATO’s first Secretary General"), mode
        assert [p.rank for p in passages] == [1, 2, 3]
    result = pipeline.ask("Who was NATO's first Secretary General?")
    assert result.answers and "Lord Hastings Lionel Ismay" in result.answers[0].text
    documents = {d: s.document.text for d, s in pipeline.index.documents.items()}
    assert_offsets(ask_response(result), documents)  # paragraph_text[start:end] == answer text, doc offsets too
    manifest = pipeline.index.manifest
    assert manifest["dense"]["backend"] == "milvus" and manifest["dense"]["alias"] == settings.milvus_collection
    assert manifest["document_count"] == 2 and manifest["passage_count"] == len(pipeline.index) > 20
    assert not settings.index_dir.exists()


def test_hybrid_fuses_milvus_bm25_and_dense_like_the_embedded_path(pipeline: Pipeline, fake_pipeline: Pipeline):
    cfg = pipeline.settings
    mine = pipeline.search("NATO first Secretary General Ismay", top_k=5, mode="hybrid").passages
    top = mine[0]
    assert top.scores.bm25 > 0 and top.scores.dense is not None
    assert top.scores.fused == pytest.approx((cfg.bm25_weight + cfg.dense_weight) / (cfg.rrf_k + 1))
    # The same terms (bm25s tokens, stemmed) and the same vectors: the embedded index ranks alike.
    embedded = fake_pipeline.search("NATO first Secretary General Ismay", top_k=5, mode="hybrid").passages
    assert [p.passage.text for p in mine[:3]] == [p.passage.text for p in embedded[:3]]
    for query in ("South Korea NATO partnership", "Indo-Pacific partners summit Washington"):
        dense = [p.passage.text for p in pipeline.search(query, top_k=5, mode="dense").passages]
        assert dense == [p.passage.text for p in fake_pipeline.search(query, top_k=5, mode="dense").passages]
        assert pipeline.search(query, top_k=5, mode="bm25").passages[0].passage.text == \
            fake_pipeline.search(query, top_k=5, mode="bm25").passages[0].passage.text


def test_upload_replace_delete_change_only_that_documents_rows(pipeline: Pipeline):
    before = _rows(pipeline)
    assert set(before) == {"korea-2024-nato-summit", "nato-indo-pacific-pivot"}
    version = pipeline.index.version

    report = pipeline.upsert_documents([document_from_text(ZORBLAX, "zorblax")])
    assert report.added == ["zorblax"] and pipeline.index.version == version + 1
    after = _rows(pipeline)
    assert {k: v for k, v in after.items() if k != "zorblax"} == before  # other documents untouched
    added = after["zorblax"]
    assert sum(kind == "passage" for kind, _ in added) == pipeline.index.passage_count("zorblax") >= 1
    answer = pipeline.ask("What colour is the zorblax beacon?").answers[0]
    assert answer.text == "Ultramarine Blue" and answer.citation.document_id == "zorblax"

    pipeline.upsert_documents([document_from_text(ZORBLAX.replace("Ultramarine Blue", "Signal Red"), "zorblax")])
    replaced = _rows(pipeline)
    assert {k: v for k, v in replaced.items() if k != "zorblax"} == before
    assert not {k for _, k in replaced["zorblax"] if isinstance(k, int)} & {k for _, k in added if isinstance(k, int)}
    assert pipeline.ask("What colour is the zorblax beacon?").answers[0].text == "Signal Red"

    unchanged = pipeline.upsert_documents([document_from_text(ZORBLAX.replace("Ultramarine Blue", "Signal Red"), "zorblax")])
    assert unchanged.unchanged == ["zorblax"] and pipeline.index.version == version + 2  # no write, no new version

    counted = _rows(pipeline)  # the manifest's live counts follow every write (no count(*) per reload)
    assert len(pipeline.index) == sum(kind == "passage" for rows in counted.values() for kind, _ in rows)
    assert len(pipeline.index.documents) == len(counted) == 3

    pipeline.delete_document("zorblax")
    assert _rows(pipeline) == before
    assert len(pipeline.index) == sum(kind == "passage" for rows in before.values() for kind, _ in rows)
    assert "zorblax" not in pipeline.index.documents and len(pipeline.index.documents) == 2
    assert all(a.citation.document_id != "zorblax" for a in pipeline.ask("What colour is the zorblax beacon?").answers)


def test_two_pipelines_on_one_uri_see_each_others_writes(pipeline: Pipeline, settings: Settings, monkeypatch):
    from rag.store.milvus_index import MilvusIndex

    other = Pipeline(settings)  # a second stateless replica: nothing of its own on disk
    other.warm_up()
    assert other.index.version == pipeline.index.version
    loads = []
    original = MilvusIndex.load.__func__

    def counting(cls, *args, **kwargs):
        loads.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(MilvusIndex, "load", classmethod(counting))
    pipeline.upsert_documents([document_from_text(ZORBLAX, "zorblax")])
    loads.clear()
    for _ in range(3):  # the version bump is seen once, then the new snapshot serves
        assert "zorblax" in other.index.documents
    assert len(loads) == 1 and other.index.version == pipeline.index.version
    assert other.ask("What colour is the zorblax beacon?").answers[0].citation.document_id == "zorblax"
    other.delete_document("zorblax")
    assert "zorblax" not in pipeline.index.documents and len(pipeline.index) == len(other.index)


def test_document_detail_over_http_with_no_index_folder(pipeline: Pipeline, settings: Settings):
    with TestClient(create_app(settings, pipeline), base_url="http://127.0.0.1:8000", headers={"X-Requested-With": "pytest"}) as client:
        upload = client.post("/v1/documents", files={"file": ("zorblax.txt", ZORBLAX.encode(), "text/plain")})
        assert upload.status_code == 201, upload.text
        listed = {d["document_id"]: d for d in client.get("/v1/documents").json()["documents"]}
        assert set(listed) == {"korea-2024-nato-summit", "nato-indo-pacific-pivot", "zorblax"}
        body = client.get("/v1/documents/zorblax").json()
        assert body["text"].startswith("Zorblax Facts") and body["paragraphs"]
        for paragraph in body["paragraphs"]:
            assert body["text"][paragraph["doc_start"] : paragraph["doc_end"]] == paragraph["text"]
        ask = client.post("/v1/ask", json={"question": "What colour is the zorblax beacon?"}).json()
        texts = {d: client.get(f"/v1/documents/{d}").json()["text"] for d in listed}
        assert texts["zorblax"] == body["text"]
        assert ask["answers"][0]["text"] == "Ultramarine Blue"
        assert_offsets(ask, texts)
        assert client.get("/").status_code == 200 and client.get("/v1/documents/nope").status_code == 404
        assert client.get("/web/examples").json()["examples"]  # the largest documents, found by their size vectors
        page = client.get("/documents/zorblax")  # the web document page reads this document only
        assert page.status_code == 200 and "Ultramarine Blue" in page.text
        assert client.delete("/v1/documents/zorblax").status_code == 200
        assert client.get("/v1/documents/zorblax").status_code == 404
    assert not settings.index_dir.exists()


def test_ids_with_quotes_and_large_documents_round_trip(pipeline: Pipeline):
    odd = 'say "hi" \\ back'
    big = "Big Document\n\n" + "\n\n".join(f"Paragraph {i} mentions the quokka number {i} and ünïcödé text." for i in range(3000))
    assert len(big.encode()) > 3 * 65_535  # stored as several parts
    quoted = replace(document_from_text(ZORBLAX, "zorblax"), document_id=odd)  # as an explicit API document_id
    pipeline.upsert_documents([quoted, document_from_text(big, "big")])
    document, info, paragraphs = pipeline.document_detail(odd)
    assert document.text == quoted.text and document.title == "Zorblax Facts" and info["origin"] == "upload" and paragraphs[0].document_id == odd
    assert pipeline.search("zorblax beacon colour", top_k=1).passages[0].passage.document_id == odd
    document, info, paragraphs = pipeline.document_detail("big")
    assert document.text == document_from_text(big, "big").text and len(paragraphs) > 100
    assert all(document.text[p.doc_start : p.doc_end] == p.text for p in paragraphs)
    pipeline.delete_document(odd)
    pipeline.delete_document("big")
    assert len(pipeline.index.documents) == 2


def test_wrong_encoder_is_refused_and_a_rebuild_switches_the_alias(pipeline: Pipeline, settings: Settings):
    old = pipeline.index.name
    with pytest.raises(IndexIncompatible, match="hashing:256"):
        Pipeline(settings.model_copy(update={"embedding_model": "hashing:128"})).reload()
    # Other chunking: `rag index` re-embeds every document into a new collection and moves the alias.
    rechunked = Pipeline(settings.model_copy(update={"max_passage_words": 60}))
    rechunked.warm_up()
    report = rechunked.index_paths([settings.corpus_dir])
    assert report.documents == 2 and report.embedded_passages > len(pipeline.loaded_index)
    assert rechunked.index.name != old and rechunked.index.version > pipeline.loaded_index.version
    assert pipeline.index.name == rechunked.index.name  # the other replica followed the alias
    assert pipeline.ask("Who was NATO's first Secretary General?").answers[0].text.endswith("Ismay")


def test_writes_benchmark_runs_on_milvus_lite():
    """`rag bench --section writes --backend milvus` at a toy size (the figures are in eval/BENCHMARKS.md)."""
    import numpy as np
    from types import SimpleNamespace

    from rag.bench.milvus_writes import bench_milvus_writes

    rng = np.random.default_rng(0)

    def vectors(n: int) -> np.ndarray:
        x = rng.standard_normal((n, 32)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    sample = SimpleNamespace(paragraphs=[f"Paragraph {i} is about harbours, beacons and ships number {i}." for i in range(20)],
                             titles=[f"Title {i}" for i in range(20)])
    row = bench_milvus_writes(sample, SimpleNamespace(vectors=vectors), 60, rounds=2, questions=["Which beacon is blue?"])
    assert row["documents"] == 60 and row["passages"] == 60
    assert row["upload_ms"]["n"] == row["delete_ms"]["n"] == 2 and row["hybrid_without_encoding_ms"]["n"] == 100


def test_concurrent_writers_and_readers_on_one_uri(pipeline: Pipeline, settings: Settings):
    """Two replicas upload at once while a third searches: every document lands once, the
    live counts match the rows, and no search fails or returns a passage without its paragraph."""
    import threading

    replicas = [pipeline, Pipeline(settings)]
    replicas[1].warm_up()
    errors: list[BaseException] = []
    stop = threading.Event()

    def write(replica: Pipeline, name: str) -> None:
        try:
            for n in range(4):
                replica.upsert_documents([document_from_text(ZORBLAX.replace("1921", f"19{n}{n}"), f"{name}-{n}")])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                for p in Pipeline.search(replicas[0], "zorblax beacon colour", top_k=5).passages:
                    assert p.paragraph.text[p.passage.paragraph_start :].startswith(p.passage.text)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(replica, f"w{i}")) for i, replica in enumerate(replicas)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert not errors, errors
    rows = _rows(pipeline)
    assert set(rows) == {"korea-2024-nato-summit", "nato-indo-pacific-pivot"} | {f"w{i}-{n}" for i in range(2) for n in range(4)}
    for replica in replicas:
        assert len(replica.index.documents) == 10
        assert len(replica.index) == sum(kind == "passage" for found in rows.values() for kind, _ in found)
