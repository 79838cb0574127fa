"""A full disk (issue 20, item 2): a write that cannot be stored is 503 with Retry-After and
leaves nothing behind; a BM25 sync that fails after the SQLite commit fails no read.  The disk
is "full" by injecting ENOSPC where each library writes (eval/redteam_storage.py replays a
real 64 MB tmpfs)."""
from __future__ import annotations

import errno
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from rag import pipeline as pipeline_module
from rag.api.app import create_app
from rag.store import database as db
from rag.store import lexical, segments

LOCAL = {"X-Requested-With": "test"}
REAL_SYNC = lexical.sync
NEW = {"document_id": "zorblax-note", "text": "The zorblax beacon stands on the northern pier and is painted blue."}


@pytest.fixture
def client(fake_pipeline):
    with TestClient(create_app(fake_pipeline.settings, fake_pipeline), raise_server_exceptions=False,
                    base_url="http://127.0.0.1:8000") as client:
        yield client


def _segment_folders(index_dir) -> set[str]:
    return {p.name for p in (index_dir / segments.SEGMENTS_DIR).iterdir()}


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _sqlite_full(*args, **kwargs):
    raise sqlite3.OperationalError("database or disk is full")


@pytest.mark.parametrize("where", ["vectors", "sqlite"])
def test_a_write_on_a_full_disk_is_503_and_commits_nothing(client, fake_pipeline, monkeypatch, where: str):
    index_dir = fake_pipeline.index_dir
    version, folders = fake_pipeline.loaded_index.latest_version(), _segment_folders(index_dir)
    if where == "vectors":
        monkeypatch.setattr(segments.np, "save", _no_space)  # the new segment's .npy files
    else:
        monkeypatch.setattr(db, "insert_passages", _sqlite_full)  # inside the transaction, segment published
    r = client.post("/v1/documents", json=NEW, headers=LOCAL)
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "300"
    assert "disk is full" in r.json()["detail"] and str(index_dir) not in r.text
    assert fake_pipeline.loaded_index.latest_version() == version
    assert _segment_folders(index_dir) == folders  # no orphan segment left behind
    monkeypatch.undo()
    assert client.get("/v1/documents/zorblax-note").status_code == 404
    assert client.post("/v1/search", json={"query": "Who was NATO's first Secretary General?"}).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/documents", json=NEW, headers=LOCAL).status_code == 201  # space is back


def test_a_failing_bm25_sync_fails_no_read_and_catches_up(client, fake_pipeline, monkeypatch):
    def full(*args, **kwargs):
        raise ValueError("Failed to commit: IoError { io_error: Os { code: 28, kind: StorageFull, message: \"No space left on device\" } }")

    monkeypatch.setattr(lexical, "sync", full)
    monkeypatch.setattr(pipeline_module, "LEXICAL_RETRY_S", 0.2)
    r = client.post("/v1/documents", json=NEW, headers=LOCAL)
    assert r.status_code == 201, r.text  # committed in SQLite: the write is done, BM25 follows
    assert fake_pipeline.index.lexical_stale
    for _ in range(2):  # every read works, a second time included (issue: each read retried the sync and failed)
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/documents").status_code == 200
        assert client.get("/v1/documents/zorblax-note").status_code == 200
        assert client.post("/v1/ask", json={"question": "Who was NATO's first Secretary General?"}).status_code == 200
    dense = client.post("/v1/search", json={"query": "zorblax beacon northern pier", "mode": "dense"}).json()["passages"]
    bm25 = client.post("/v1/search", json={"query": "zorblax beacon northern pier", "mode": "bm25"}).json()["passages"]
    assert dense[0]["document_id"] == "zorblax-note"
    assert "zorblax-note" not in {p["document_id"] for p in bm25}  # BM25's last commit predates it
    assert "BM25 serves an older version" in client.get("/readyz").json()["detail"]

    monkeypatch.setattr(lexical, "sync", REAL_SYNC)  # space is back
    deadline = time.monotonic() + 10
    while fake_pipeline.loaded_index.lexical_stale and time.monotonic() < deadline:
        time.sleep(0.1)  # the background retry
    assert not fake_pipeline.loaded_index.lexical_stale
    bm25 = client.post("/v1/search", json={"query": "zorblax beacon northern pier", "mode": "bm25"}).json()["passages"]
    assert bm25[0]["document_id"] == "zorblax-note"


def test_a_delete_while_bm25_lags_is_effective_at_once(client, fake_pipeline, monkeypatch):
    assert client.post("/v1/documents", json=NEW, headers=LOCAL).status_code == 201
    monkeypatch.setattr(lexical, "sync", _no_space)
    assert client.delete("/v1/documents/zorblax-note", headers=LOCAL).status_code == 200
    assert fake_pipeline.index.lexical_stale  # tantivy still holds the passages ...
    bm25 = client.post("/v1/search", json={"query": "zorblax beacon northern pier", "mode": "bm25"}).json()["passages"]
    assert "zorblax-note" not in {p["document_id"] for p in bm25}  # ... the snapshot never shows them


def test_disk_full_is_recognised_in_each_library_s_words(tmp_path):
    from rag.store.files import is_disk_full

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_disk_full(ValueError("IoError { io_error: Os { code: 28, kind: StorageFull } }"))
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as inner:
            raise RuntimeError("could not write the segment") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(sqlite3.OperationalError("no such table: x"))
    assert not is_disk_full(sqlite3.OperationalError("disk I/O error"), tmp_path)  # plenty of space here
