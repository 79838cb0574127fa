"""Bounded loopback load test: several clients mix questions, searches, uploads and deletes.

uvicorn serves the app on 127.0.0.1 in a thread (hashing encoder, heuristic reader, an API key,
the rate limiter and the work budget in the path with budgets the test cannot exhaust).  Each client owns its own
document ids, so it knows exactly what the service must hold for them; all clients also fight
over one shared id.  Checked while running:

* every request gets its expected status (no 5xx, no 404 for a document the client owns);
* read-your-writes, never a mix: every passage of a client's own document in a search result is
  the exact text of that document's latest version (a stale or half-updated index would show
  old text), and a deleted document never comes back.

Checked at the end: the document list, the in-memory index and the index on disk agree exactly
with what the clients wrote (no lost upload, no resurrected delete), and every document has
passages and vectors.

Bounded by time and count: RAG_LOAD_SECONDS (default 20) and RAG_LOAD_CLIENTS (default 4);
``RAG_LOAD_SECONDS=180 pytest tests/test_concurrency.py -s`` is the longer run.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from support import indexed_pipeline, serve
from rag.api.app import create_app
from rag.store import database as db
from rag.store.corpus_index import CorpusIndex
from rag.store.segments import segments_root

SECONDS = float(os.environ.get("RAG_LOAD_SECONDS", "20"))
CLIENTS = int(os.environ.get("RAG_LOAD_CLIENTS", "4"))
MAX_OPS_PER_CLIENT = int(os.environ.get("RAG_LOAD_MAX_OPS", "100000"))
KEY = "load-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ORIGINAL_IDS = {"korea-2024-nato-summit", "nato-indo-pacific-pivot"}
SHARED = "shared-notes"
WORDS = "alliance beacon treaty summit member ocean policy defence council north pacific korea signal harbour".split()
QUESTIONS = ["Who was NATO's first Secretary General?", "When was the summit held?", "What colour is the beacon?"]


class LoadClient(threading.Thread):
    def __init__(self, number: int, base_url: str, stop_at: float):
        super().__init__(name=f"load-client-{number}", daemon=True)
        self.number = number
        self.base_url = base_url
        self.stop_at = stop_at
        self.rng = random.Random(number)
        self.mine: dict[str, str] = {}  # id -> text of the latest version this client wrote
        self.deleted: set[str] = set()
        self.shared_texts: list[str] = []
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.version = 0

    def _text(self, document_id: str) -> str:
        self.version += 1
        tag = f"{document_id.replace('-', '')}v{self.version}"
        sentences = [" ".join(self.rng.choice(WORDS) for _ in range(12)) + "." for _ in range(self.rng.randint(1, 6))]
        # Blank-line paragraphs: the canonical text the service keeps (and serves) is this text.
        return f"Record {tag} for the load test.\n\n" + "\n\n".join(f"{s[:-1]} {tag}." for s in sentences)

    def _expect(self, what: str, response: httpx.Response, *statuses: int) -> bool:
        self.counts[what] += 1
        self.counts[f"status {response.status_code}"] += 1
        if response.status_code not in statuses:
            self.errors.append(f"{what}: {response.status_code} {response.text[:300]}")
            return False
        return True

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=120) as http:
            ops = 0
            while time.monotonic() < self.stop_at and ops < MAX_OPS_PER_CLIENT:
                ops += 1
                try:
                    self.step(http)
                except Exception as exc:  # noqa: BLE001 - every failure is reported, none may happen
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def step(self, http: httpx.Client) -> None:
        roll = self.rng.random()
        if roll < 0.35:
            r = http.post("/v1/ask", json={"question": self.rng.choice(QUESTIONS)})
            self._expect("ask", r, 200)
        elif roll < 0.55:
            self.search_own(http)
        elif roll < 0.60:
            r = http.get("/v1/documents")
            if self._expect("list", r, 200):
                ids = {d["document_id"] for d in r.json()["documents"]}
                for doc_id in self.mine:
                    if doc_id not in ids:
                        self.errors.append(f"list: own document {doc_id} missing")
                for doc_id in self.deleted & ids:
                    self.errors.append(f"list: deleted document {doc_id} is back")
        elif roll < 0.82 or not self.mine:
            self.upload(http)
        elif roll < 0.85:
            text = self._text(SHARED)
            if self._expect("upload shared", http.post("/v1/documents", json={"document_id": SHARED, "text": text}, headers=AUTH), 201):
                self.shared_texts.append(text)
        else:
            doc_id = self.rng.choice(sorted(self.mine))
            if self._expect("delete", http.delete(f"/v1/documents/{doc_id}", headers=AUTH), 200):
                del self.mine[doc_id]
                self.deleted.add(doc_id)

    def upload(self, http: httpx.Client) -> None:
        if self.mine and self.rng.random() < 0.3:
            doc_id = self.rng.choice(sorted(self.mine))  # a new version of an own document
        else:
            doc_id = f"c{self.number}-d{self.version}"
        text = self._text(doc_id)
        if self.rng.random() < 0.5:
            r = http.post("/v1/documents", json={"document_id": doc_id, "text": text}, headers=AUTH)
        else:
            r = http.post("/v1/documents", files={"file": (f"{doc_id}.txt", text.encode())}, data={"document_id": doc_id}, headers=AUTH)
        if self._expect("upload", r, 201):
            if r.json()["document_ids"] != [doc_id]:
                self.errors.append(f"upload: ids {r.json()['document_ids']} != {doc_id}")
            self.mine[doc_id] = text
            self.deleted.discard(doc_id)

    def search_own(self, http: httpx.Client) -> None:
        targets = sorted(self.mine) or sorted(self.deleted) or ["nothing"]
        doc_id = self.rng.choice(targets)
        query = f"Record {doc_id.replace('-', '')}"
        r = http.post("/v1/search", json={"query": query, "top_k": 10, "mode": "bm25"})
        if not self._expect("search", r, 200):
            return
        for passage in r.json()["passages"]:
            pid = passage["document_id"]
            if pid in self.deleted and pid not in self.mine:
                self.errors.append(f"search: deleted document {pid} found")
            elif pid in self.mine:
                text = self.mine[pid]
                if text[passage["doc_start"] : passage["doc_end"]] != passage["text"]:
                    self.errors.append(f"search: stale or mixed passage of {pid}: {passage['text'][:80]!r}")


def test_concurrent_load_loses_nothing(tmp_path: Path):
    pipeline = indexed_pipeline(tmp_path, api_keys=KEY, rate_limit="1000000/minute", work_budget="100000000/minute", log_json=False)
    settings = pipeline.settings

    started = time.monotonic()
    with serve(create_app(settings, pipeline, warm_up=False), start_timeout=20, timeout_keep_alive=30) as base_url:
        clients = [LoadClient(n, base_url, started + SECONDS) for n in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(SECONDS + 180)
            assert not client.is_alive(), f"{client.name} is stuck"
        elapsed = time.monotonic() - started

        with httpx.Client(base_url=base_url, timeout=60) as http:
            listed = {d["document_id"]: d for d in http.get("/v1/documents").json()["documents"]}
            expected = ORIGINAL_IDS | {doc_id for c in clients for doc_id in c.mine}
            shared_texts = [t for c in clients for t in c.shared_texts]
            if shared_texts:
                expected.add(SHARED)
            texts = {doc_id: http.get(f"/v1/documents/{doc_id}").json()["text"] for c in clients for doc_id in c.mine}
            shared_now = http.get(f"/v1/documents/{SHARED}").json().get("text") if shared_texts else None
            metrics = http.get("/metrics").text

    counts = sum((c.counts for c in clients), Counter())
    errors = [e for c in clients for e in c.errors]
    requests = sum(v for k, v in counts.items() if not k.startswith("status"))
    print(
        f"\nload test: {CLIENTS} clients, {elapsed:.1f}s, {requests} requests ({requests / elapsed:.1f}/s), "
        f"{len(errors)} errors; {dict(sorted(counts.items()))}; {len(listed)} documents at the end"
    )
    assert not errors, errors[:10]
    assert requests >= 20 * CLIENTS or SECONDS < 10, "the load test did too little to mean anything"
    assert counts["upload"] and counts["delete"] and counts["ask"]
    assert not any(k.startswith("status 5") for k in counts)

    # the document list is exactly what the clients wrote: nothing lost, nothing resurrected
    assert set(listed) == expected
    for client in clients:
        for doc_id, text in client.mine.items():
            assert texts[doc_id] == text, f"{doc_id}: an update was lost"
    if shared_texts:
        assert shared_now in shared_texts

    # ... and the index agrees with it, in memory and on disk
    on_disk = CorpusIndex.load(settings.index_dir, expected_model="hashing:256")
    assert on_disk.version >= pipeline.index.version - 1  # a background compaction may commit once more
    assert set(on_disk.documents) == expected
    assert {p.document_id for p in on_disk.passages} == expected  # every document has passages, no orphans
    assert len(on_disk.vectors) == len(on_disk.passages)
    for passage in on_disk.passages:
        text = on_disk.documents[passage.document_id].document.text
        assert text[passage.doc_start : passage.doc_end] == passage.text
    assert set(pipeline.index.documents) == expected
    assert all(listed[d]["passages"] > 0 for d in expected)
    assert f"rag_index_documents {float(len(expected))}" in metrics
    # no half-written segment left behind, and every segment folder is one the database names
    pipeline.compact()
    conn = db.connect(settings.index_dir / db.DATABASE_FILE)
    registered = {r[0] for r in conn.execute("SELECT name FROM segments")}
    assert {p.name for p in segments_root(settings.index_dir).iterdir()} == registered
