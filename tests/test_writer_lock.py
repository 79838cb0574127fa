"""Writes chunk and embed outside the writer lock (issue 20, item 8): a one-line upload behind a
512 KB one waited 38.6 s for it; the lock now covers only the commit."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from rag.embedding import HashingEncoder
from rag.ingest import document_from_text
from rag.settings import Settings
from rag.store import lexical
from rag.store.builder import IndexBuilder
from rag.store.corpus_index import CorpusIndex


class SlowEncoder(HashingEncoder):
    """The hashing encoder, taking ``seconds_per_text`` per text from the fifth on: a large
    upload's embedding is slow, a one-passage upload's is not."""

    def __init__(self, seconds_per_text: float):
        super().__init__(64)
        self.seconds_per_text = seconds_per_text

    def encode(self, texts, batch_size: int = 64, show_progress=None) -> np.ndarray:
        time.sleep(self.seconds_per_text * max(0, len(texts) - 4))
        return super().encode(texts, batch_size, show_progress)


def _builder(tmp_path: Path, seconds_per_text: float) -> tuple[IndexBuilder, Path]:
    settings = Settings(index_dir=tmp_path / "index", embedding_model="hashing:64", background_compaction=False, max_passage_words=20)
    return IndexBuilder(settings, SlowEncoder(seconds_per_text)), settings.index_dir


def test_a_small_upload_is_not_blocked_by_a_slow_large_one(tmp_path: Path):
    builder, index_dir = _builder(tmp_path, seconds_per_text=0.01)
    builder.apply(index_dir, upserts=[document_from_text("The first note.", "first")])
    words = " ".join(f"w{j}" for j in range(15))
    large = document_from_text("\n\n".join(f"Paragraph {i} about the harbour beacon: {words}." for i in range(150)), "large")
    finished: dict[str, float] = {}

    def write(document, name: str) -> None:
        builder.apply(index_dir, upserts=[document])
        finished[name] = time.perf_counter()

    started = time.perf_counter()
    slow = threading.Thread(target=write, args=(large, "large"))
    slow.start()
    time.sleep(0.3)  # the large upload is embedding now
    small_started = time.perf_counter()
    write(document_from_text("A one-line note about the zorblax.", "small"), "small")
    small_took = finished["small"] - small_started
    slow.join(30)
    assert finished["large"] - started > 2.5  # ~300 passages at 0.01 s: embedding took seconds
    assert finished["small"] < finished["large"], "the small upload waited for the large one"
    large_took = finished["large"] - started
    # relative to the large write measured here, not a wall-clock bound a loaded machine breaks
    assert small_took < large_took / 2, f"the small upload took {small_took:.2f} s behind a {large_took:.1f} s one"
    index = CorpusIndex.load(index_dir)
    assert set(index.documents) == {"first", "large", "small"}
    assert len(index.vectors) == len(index.passages) > 150
    assert index.version == 3


def test_concurrent_writes_of_one_document_id_leave_the_last_commit(tmp_path: Path):
    """Replace semantics hold when several writers prepare the same id at once: one live
    document whose passages, vectors and BM25 entries are all of the last committed text."""
    builder, index_dir = _builder(tmp_path, seconds_per_text=0.01)
    builder.apply(index_dir, upserts=[document_from_text("The original text.", "same")])
    texts = [("\n\n".join(f"Version {n} paragraph {i} mentions word{n}x." for i in range(10 * (n + 1)))) for n in range(4)]
    versions: dict[int, int] = {}

    def write(n: int) -> None:
        index, _ = builder.apply(index_dir, upserts=[document_from_text(texts[n], "same")])
        versions[n] = index.version

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    index = CorpusIndex.load(index_dir)
    last = max(versions, key=versions.__getitem__)
    assert sorted(versions.values()) == [2, 3, 4, 5]  # each write its own version, in commit order
    assert index.version == 5 and list(index.documents) == ["same"]
    assert index.documents["same"].document.text == texts[last]
    passages = list(index.passages)
    assert len(passages) == index.passage_count("same") > 0 and all(f"word{last}x" in p.text for p in passages)
    assert len(index.vectors) == len(passages)
    for n in range(4):
        found = index.lexical.search(f"word{n}x", 50)[0]
        assert len(found) == (len(passages) if n == last else 0)
    assert lexical.recorded_version(index.conn) == 5
