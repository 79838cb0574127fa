"""Crash safety for real: SIGKILL a `rag index` process, a `rag serve` upload mid-build and a
compaction mid-merge.

After each kill the previous index must load and answer, and the next run must complete.  The
kills are aimed by watching the index folder: the writer holds ``index/.lock`` (flock) while
it chunks and embeds, and writes its vector segment into ``index/segments/.tmp-s-*`` before
the SQLite transaction that names it commits; a compaction builds ``.merge-s-*``.  Uses the
hashing encoder (no model), so each build takes seconds.
"""
from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from support import CORPUS
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store.corpus_index import CorpusIndex

MODEL = "hashing:256"
ORIGINAL_IDS = {"korea-2024-nato-summit", "nato-indo-pacific-pivot"}
WORDS = "alliance beacon treaty summit member ocean policy defence council north pacific korea zorblax signal harbour".split()
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_EMBEDDING_MODEL=MODEL, RAG_READER="heuristic", RAG_RATE_LIMIT="", RAG_LOG_JSON="false")
    return env


def _rag(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", *args]


def _write_corpus(folder: Path, documents: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(documents):
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(4)]
        (folder / f"generated-{i:05d}.txt").write_text("\n\n".join(paragraphs))


def _writer_holds_lock(index_dir: Path) -> bool:
    lock = index_dir / ".lock"
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def _temp_versions(index_dir: Path) -> list[Path]:
    """Segments being written (a writer's ``.tmp-s-*``, a compaction's ``.merge-s-*``)."""
    root = index_dir / "segments"
    return [p for p in root.iterdir() if p.name.startswith((".tmp-", ".merge-"))] if root.exists() else []


def _kill_when(process: subprocess.Popen, condition, timeout: float = 60) -> float:
    """SIGKILL ``process`` the moment ``condition()`` holds; returns when that happened."""
    started = time.monotonic()
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended (rc {process.returncode}) before the kill point")
        if time.monotonic() - started > timeout:
            process.kill()
            pytest.fail("the kill point was never reached")
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL
    return time.monotonic() - started


def _assert_previous_index(index_dir: Path, expected_ids: set[str], question: str = "Who was NATO's first Secretary General?") -> None:
    index = CorpusIndex.load(index_dir, expected_model=MODEL)
    assert set(index.documents) == expected_ids
    assert {p.document_id for p in index.passages} == expected_ids  # documents and passages agree
    assert len(index.vectors) == len(index.passages)
    pipeline = Pipeline(Settings(index_dir=index_dir, embedding_model=MODEL, reader="heuristic"))
    pipeline.warm_up()
    assert "Ismay" in pipeline.ask(question).answers[0].text


@pytest.fixture
def indexed_corpus(tmp_path: Path) -> tuple[Path, Path]:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(CORPUS, corpus)
    pipeline = Pipeline(Settings(index_dir=index_dir, embedding_model=MODEL, reader="heuristic"))
    pipeline.index_paths([corpus])
    return corpus, index_dir


def test_sigkill_during_rag_index_keeps_the_previous_index(indexed_corpus):
    corpus, index_dir = indexed_corpus
    _write_corpus(corpus, 300)
    command = _rag("index", str(corpus), "--index", str(index_dir), "--model", MODEL)

    # 1. killed while it chunks and embeds (holding the writer lock, nothing written yet)
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(process, lambda: _writer_holds_lock(index_dir))
    _assert_previous_index(index_dir, ORIGINAL_IDS)

    # 2. killed while it writes the new version folder
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(process, lambda: bool(_temp_versions(index_dir)))
    assert _temp_versions(index_dir), "the kill should leave a half-written version behind"
    _assert_previous_index(index_dir, ORIGINAL_IDS)

    # 3. the next run completes (the dead writer's lock is free) and cleans up after the crash
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "indexed 302 documents" in done.stdout
    expected = ORIGINAL_IDS | {f"generated-{i:05d}" for i in range(300)}
    _assert_previous_index(index_dir, expected)
    assert not _temp_versions(index_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(index_dir: Path, port: int) -> subprocess.Popen:
    env = {**_env(), "RAG_API_KEYS": "durability-key"}
    process = subprocess.Popen(
        _rag("serve", "--host", "127.0.0.1", "--port", str(port), "--index", str(index_dir), "--no-build"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rag serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("rag serve did not become ready")


def test_sigkill_during_an_upload_keeps_the_previous_index(indexed_corpus):
    _, index_dir = indexed_corpus
    rng = random.Random(1)
    big = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(1200))  # ~0.6 MB, 1200 passages
    headers = {"Authorization": "Bearer durability-key"}
    port = _free_port()
    server = _serve(index_dir, port)
    try:
        outcome: dict[str, object] = {}

        def upload() -> None:
            try:
                outcome["response"] = httpx.post(
                    f"http://127.0.0.1:{port}/v1/documents", json={"document_id": "big-upload", "text": big}, headers=headers, timeout=60
                )
            except httpx.TransportError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=upload)
        thread.start()
        _kill_when(server, lambda: bool(_temp_versions(index_dir)))
        thread.join(30)
        assert "error" in outcome, "the client must see the connection drop, not a success"
    finally:
        if server.poll() is None:
            server.kill()
    _assert_previous_index(index_dir, ORIGINAL_IDS)

    # the next writer (a fresh process opening the same index) completes the upload
    from fastapi.testclient import TestClient

    from rag.api.app import create_app

    settings = Settings(index_dir=index_dir, embedding_model=MODEL, reader="heuristic", api_keys="durability-key", rate_limit="", log_json=False)
    with TestClient(create_app(settings)) as client:
        assert {d["document_id"] for d in client.get("/v1/documents").json()["documents"]} == ORIGINAL_IDS
        r = client.post("/v1/documents", json={"document_id": "big-upload", "text": big}, headers=headers)
        assert r.status_code == 201, r.text
        assert {d["document_id"] for d in client.get("/v1/documents").json()["documents"]} == ORIGINAL_IDS | {"big-upload"}
        pages, url = [], "/v1/documents/big-upload"
        while url:  # document reads come in pages of paragraphs (issue 20, item 5)
            page = client.get(url).json()
            pages.append(page["text"])
            url = page["next"]
        assert "".join(pages) == big
    _assert_previous_index(index_dir, ORIGINAL_IDS | {"big-upload"})
    assert not _temp_versions(index_dir)


def test_a_version_written_by_another_process_right_after_ours_is_picked_up(indexed_corpus, monkeypatch):
    """Regression: the pipeline remembered CURRENT as read *after* its own write, so a version
    another writer switched to in between was taken for its own and never loaded."""
    from rag.store import builder as builder_module
    from rag.types import Document

    _, index_dir = indexed_corpus
    settings = Settings(index_dir=index_dir, embedding_model=MODEL, reader="heuristic")
    ours, other = Pipeline(settings), Pipeline(settings)
    ours.warm_up()
    real_apply = builder_module.IndexBuilder.apply
    raced = []

    def apply_then_race(self, *args, **kwargs):
        result = real_apply(self, *args, **kwargs)
        if not raced:  # another writer slips in right after our version is written
            raced.append(True)
            other.upsert_documents([Document(document_id="from-other-writer", text="Written by another process.")])
        return result

    monkeypatch.setattr(builder_module.IndexBuilder, "apply", apply_then_race)
    ours.upsert_documents([Document(document_id="from-us", text="Written by this process.")])
    assert set(ours.index.documents) == ORIGINAL_IDS | {"from-us", "from-other-writer"}


def test_sigkill_during_compaction_keeps_the_index_and_the_next_compaction_completes(indexed_corpus):
    from rag.store import compaction
    from rag.types import Document

    _, index_dir = indexed_corpus
    settings = Settings(index_dir=index_dir, embedding_model=MODEL, reader="heuristic", background_compaction=False)
    pipeline = Pipeline(settings)
    extra = {f"note-{n}" for n in range(compaction.MERGE_FACTOR)}
    for doc_id in sorted(extra):
        pipeline.upsert_documents([Document(document_id=doc_id, text=f"A short note {doc_id} about the zorblax harbour.")])
    pipeline.delete_document("note-0")
    expected = ORIGINAL_IDS | extra - {"note-0"}
    assert compaction.due(index_dir)
    script = ("import sys, time; from pathlib import Path; from rag.settings import Settings; from rag.store import compaction; "
              "compaction.compact(Path(sys.argv[1]), Settings(index_dir=sys.argv[1], embedding_model=sys.argv[2]), "
              "before_commit=lambda: time.sleep(60))")
    process = subprocess.Popen([sys.executable, "-c", script, str(index_dir), MODEL], env=_env(), stderr=subprocess.PIPE)
    _kill_when(process, lambda: bool(_temp_versions(index_dir)))
    _assert_previous_index(index_dir, expected)

    # the next write completes and removes the dead compaction's merge; then compaction completes
    pipeline.upsert_documents([Document(document_id="after-crash", text="Written after the crash.")])
    assert not _temp_versions(index_dir)
    assert compaction.compact_all(index_dir, settings) >= 1
    _assert_previous_index(index_dir, expected | {"after-crash"})
    conn_rows = CorpusIndex.load(index_dir).manifest["dense"]
    assert conn_rows["live"] == conn_rows["rows"]  # the deleted note's vectors are gone
