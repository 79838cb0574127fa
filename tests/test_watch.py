"""rag.watch with real file-system events: a watched folder stays indexed (issue 24, part 3)."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("watchfiles")

from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.watch import FolderWatcher, relevant  # noqa: E402

DEADLINE_S = 15.0


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline_s:.0f} s: {what}")


def sources(pipeline: Pipeline, folder: Path) -> dict[str, str]:
    """{file name: document id} of the indexed documents from ``folder``."""
    found = {}
    for info in pipeline.documents():
        source = info.get("source_path") or ""
        if source and Path(source).resolve().parent == folder.resolve():
            found[Path(source).name] = info["document_id"]
    return found


@pytest.fixture
def watched(fake_settings: Settings, tmp_path: Path):
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "start.txt").write_text("The lighthouse keeper was named Agnes Ferrow.\n")
    pipeline = Pipeline(fake_settings)
    pipeline.warm_up()
    watcher = FolderWatcher(pipeline, [folder], debounce_ms=800, step_ms=100).start()
    assert watcher.synced.wait(DEADLINE_S), "the first sync did not finish"
    yield pipeline, folder, watcher
    watcher.stop()


def test_relevant_ignores_temporary_and_partial_files():
    for name in (".note.txt.swp", "note.txt~", ".#note.txt", "report.pdf.part", "x.pdf.crdownload", "a.tmp",
                 ".hidden.md", "image.png", "notes.txt.swp"):
        assert not relevant(f"/data/{name}"), name
    for name in ("note.txt", "Report.PDF", "slides.pptx", "page.html", "subfolder"):
        assert relevant(f"/data/{name}"), name


def test_create_modify_delete_follow_the_folder(watched):
    pipeline, folder, watcher = watched
    assert "start.txt" in sources(pipeline, folder)  # the first sync

    note = folder / "zebra.txt"
    note.write_text("The zebra in the walled garden is painted purple.\n")
    wait_for(lambda: "zebra.txt" in sources(pipeline, folder), "a new file is indexed")
    result = pipeline.ask("What colour is the zebra painted?")
    assert result.answers and "purple" in result.answers[0].text
    assert result.answers[0].citation.document_id == sources(pipeline, folder)["zebra.txt"]

    note.write_text("The zebra in the walled garden is painted orange.\n")
    wait_for(lambda: any("orange" in p.paragraph.text for p in pipeline.search("zebra walled garden painted").passages),
             "a changed file is re-indexed")
    assert not any("purple" in p.paragraph.text for p in pipeline.search("zebra walled garden painted").passages)

    time.sleep(1.5)  # the rewrite's events may still be on their way (one batch or two)
    syncs = watcher.syncs
    (folder / ".zebra.txt.swp").write_bytes(b"\x00vim swap")  # an editor's temporary file
    (folder / "big.pdf.part").write_bytes(b"%PDF-1.4 partial")
    time.sleep(1.5)  # more than a debounced batch
    assert watcher.syncs == syncs, "temporary files triggered a sync"
    assert set(sources(pipeline, folder)) == {"start.txt", "zebra.txt"}

    note.unlink()
    wait_for(lambda: "zebra.txt" not in sources(pipeline, folder), "a deleted file is removed")
    assert "start.txt" in sources(pipeline, folder)


def test_a_burst_is_handled_in_a_few_batches(watched):
    pipeline, folder, watcher = watched
    syncs = watcher.syncs
    for i in range(200):
        (folder / f"burst-{i:03d}.txt").write_text(f"Burst note {i} mentions the code word kestrel{i}.\n")
    # The counter moves once index_paths returns, just after the new snapshot is live.
    wait_for(lambda: len(sources(pipeline, folder)) == 201 and watcher.syncs > syncs, "200 new files are indexed")
    batches = watcher.syncs - syncs
    assert 1 <= batches <= 10, f"{batches} syncs for a burst of 200 files"


# ----------------------------------------------------------------------------- the command lines
ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_EMBEDDING_MODEL": "hashing:256",
            "RAG_READER": "heuristic", "XDG_RUNTIME_DIR": str(tmp_path / "run"), "RAG_LOG_JSON": "false"}


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return out, err


def test_rag_index_watch_follows_the_folder_until_ctrl_c(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "first.txt").write_text("The first note is about otters.\n")
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "index", "--watch", str(folder)], env=_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        reader = Pipeline(Settings(index_dir=tmp_path / "index", embedding_model="hashing:256", reader="heuristic"))

        def first_synced() -> bool:
            try:
                return "first.txt" in sources(reader, folder)
            except sqlite3.OperationalError:  # the child is creating store.sqlite right now ("no such table: meta")
                return False

        wait_for(first_synced, "the first sync", 60)
        (folder / "second.md").write_text("# Second\n\nThe second note is about beavers.\n")
        wait_for(lambda: "second.md" in sources(reader, folder), "a new file is indexed by `rag index --watch`")
    finally:
        out, err = _stop(process)
    assert process.returncode in (0, 130), err
    assert "synced:" in out and "added 1" in out, out
    assert "stopped watching" in err, err


def test_rag_serve_watch_indexes_new_files(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "first.txt").write_text("The first note is about otters.\n")
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", "0", "--watch", str(folder)],
                               env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        registrations = tmp_path / "run" / f"rag-extractive-qa-{os.getuid()}"
        wait_for(lambda: process.poll() is None and bool(list(registrations.glob("*.json"))), "rag serve --watch starts", 60)
        url = json.loads(next(registrations.glob("*.json")).read_text())["url"]

        def listed(name: str) -> bool:
            with urllib.request.urlopen(f"{url}/v1/documents", timeout=10) as response:
                return name in response.read().decode()

        assert listed("first")  # the first sync ran before the socket listened
        (folder / "walrus.txt").write_text("The walrus sleeps on the northern ice shelf.\n")
        wait_for(lambda: listed("walrus"), "a new file is listed by rag serve --watch")
    finally:
        _, err = _stop(process)
    assert "watching" in err, err
