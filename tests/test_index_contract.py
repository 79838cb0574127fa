"""One contract, every backend (issue 22, requirements 1 and 9): the tests below run unchanged on
the embedded index folder (SQLite, tantivy, FAISS) and on the whole index in Milvus Lite, and
reach both only through rag/store/factory.py and the Protocols of rag/store/protocol.py (as
txtai's ANN tests run one base class over every backend).

Milvus Lite runs embedded on one file per session (a collection alias per test); the Milvus
cases skip, saying why, only when milvus-lite is not installed or cannot start here (as in
test_vector_stores.py).  Hashing encoder: no model.

Requirement 9's tolerances: a passage's BM25 and dense scores agree within 1e-4 (relative)
between a bulk build and a later upload, and between the two backends.  Both compute BM25 in
float64 from the same statistics and round to float32; dense scores are float32 inner products
(FAISS and Milvus sum in different orders), so 1e-4 leaves room for rounding and nothing else:
the per-segment Milvus scores this replaced were off by 2.5x to 5x.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from support import milvus_lite_database
from rag.embedding import HashingEncoder
from rag.errors import DocumentConflict, IndexIncompatible, IndexNotFound
from rag.ingest import document_from_text
from rag.settings import Settings
from rag.store.factory import has_index, load_index, make_writer
from rag.store.protocol import Index, IndexWriter
from rag.types import Document

BACKENDS = ["embedded", "milvus-lite"]
TOLERANCE = 1e-4
ENCODER = HashingEncoder(64)

TEXTS = {
    "harbour": "Harbour Notes\n\nThe northern harbour has a red beacon on its pier.\n\nShips dock there in winter.",
    "lighthouse": "Lighthouse Log\n\nThe old lighthouse keeper lit the lamp every night.\n\nIts beacon could be seen for miles.",
    "orchard": "Orchard Diary\n\nApple trees line the southern slope of the valley.\n\nThe harvest begins in late September.",
    "weather": "Weather Report\n\nStorms crossed the northern coast on Tuesday.\n\nThe harbour closed for two days.",
}
LATE = "Probe Facility\n\nThe probe facility was opened in 1987 by Ada Example near the northern harbour."


@pytest.fixture(scope="session")
def milvus_db(tmp_path_factory) -> str:
    return milvus_lite_database(tmp_path_factory, "milvus-contract")


def _settings(backend: str, folder: Path, request) -> Settings:
    options: dict = {"faiss_index": "flat"}
    if backend == "milvus-lite":
        options = {"vector_backend": "milvus", "milvus_uri": request.getfixturevalue("milvus_db"),
                   "milvus_collection": f"contract_{os.urandom(4).hex()}"}
    return Settings(index_dir=folder, embedding_model=ENCODER.name, reader="heuristic", **options)


def _documents(names=TEXTS) -> list[Document]:
    return [document_from_text(TEXTS[name], name) for name in names]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(backend: str, tmp_path: Path, request) -> Settings:
    return _settings(backend, tmp_path / "index", request)


@pytest.fixture
def writer(settings: Settings) -> IndexWriter:
    return make_writer(settings, ENCODER)


@pytest.fixture
def index(writer: IndexWriter, settings: Settings) -> Index:
    built, report = writer.apply(settings.index_dir, upserts=_documents())
    assert sorted(report.added) == sorted(TEXTS) and report.documents == len(TEXTS)
    return built


def _passage_ids(index: Index, document_id: str) -> list[int]:
    return [p.passage_id for p in index.passages if p.document_id == document_id]


def _by_text(index: Index, query: str) -> tuple[dict[str, float], dict[str, float]]:
    """{passage text: BM25 score} and {passage text: dense score} of every passage, for a query."""
    passages = list(index.passages)
    lexical = index.lexical.scores_of(query, [p.passage_id for p in passages])
    vectors = index.vectors_of([p.passage_id for p in passages])
    dense = vectors @ ENCODER.encode_query(query)
    return ({p.text: lexical.get(p.passage_id, 0.0) for p in passages},
            {p.text: float(score) for p, score in zip(passages, dense, strict=True)})


def _close(a: dict[str, float], b: dict[str, float]) -> None:
    assert set(a) == set(b)
    for text, score in a.items():
        assert b[text] == pytest.approx(score, rel=TOLERANCE, abs=1e-6), text


# ------------------------------------------------------------------------------ loading
def test_load_checks_the_model_and_reports_a_missing_index(index: Index, settings: Settings):
    assert has_index(settings)
    loaded = load_index(settings, expected_model=ENCODER.name)
    assert loaded.version == index.version and len(loaded) == len(index) > 0
    manifest = loaded.manifest
    assert manifest["embedding_model"] == ENCODER.name and manifest["document_count"] == len(TEXTS)
    assert manifest["passage_count"] == len(loaded) and "dense" in manifest and "lexical" in manifest
    assert not loaded.lexical_stale
    with pytest.raises(IndexIncompatible, match=ENCODER.name):
        load_index(settings, expected_model="hashing:32")
    elsewhere = settings.model_copy(update={"index_dir": settings.index_dir.parent / "nothing",
                                            "milvus_collection": f"{settings.milvus_collection}_none"})
    assert not has_index(elsewhere)
    with pytest.raises(IndexNotFound):
        load_index(elsewhere)


def test_latest_version_follows_writes_and_reopen_loads_it(index: Index, writer: IndexWriter, settings: Settings):
    assert index.latest_version() == index.version
    newer, _ = writer.apply(settings.index_dir, upserts=[document_from_text(LATE, "late")], previous=index)
    assert newer.version == index.version + 1
    assert index.latest_version() == newer.version  # the old object sees that a newer version exists
    reopened = index.reopen(ENCODER.name)
    assert reopened.version == newer.version and "late" in reopened.documents
    assert load_index(settings, previous=index).version == newer.version


# ------------------------------------------------------------------------------ reading
def test_fetch_pairs_each_passage_with_its_paragraph(index: Index):
    ids = _passage_ids(index, "harbour")
    found = index.fetch([*ids, 10**15])
    assert set(found) == set(ids)  # an unknown id is absent
    for pid, (passage, paragraph) in found.items():
        assert passage.passage_id == pid and passage.document_id == paragraph.document_id == "harbour"
        assert paragraph.text[passage.paragraph_start : passage.paragraph_start + len(passage.text)] == passage.text
        assert index.passages[pid] == passage
    with pytest.raises(KeyError):
        index.passages[10**15]
    assert index.fetch([]) == {}


def test_lexical_search(index: Index):
    ids, scores = index.lexical.search("red beacon pier", 3)
    assert index.fetch([int(ids[0])])[int(ids[0])][0].document_id == "harbour"
    assert len(ids) == len(scores) <= 3 and np.all(scores > 0) and np.all(np.diff(scores) <= 0)
    again = index.lexical.scores_of("red beacon pier", ids.tolist())
    assert all(again[int(i)] == pytest.approx(float(s), rel=1e-6) for i, s in zip(ids, scores, strict=True))
    assert index.lexical.search("zzyzx", 5)[0].size == 0 and index.lexical.search("the and of", 5)[0].size == 0
    orchard = _passage_ids(index, "orchard")
    assert index.lexical.scores_of("red beacon pier", orchard) == {}  # no query term: absent


def test_dense_search(index: Index):
    query = ENCODER.encode_query("apple trees on the southern slope")
    scores, ids = index.dense.search(query[None, :], 3)
    assert scores.shape == ids.shape == (1, 3) and np.all(np.diff(scores[0]) <= 1e-6)
    assert index.fetch([int(ids[0, 0])])[int(ids[0, 0])][0].document_id == "orchard"
    assert np.allclose(index.vectors_of(ids[0]) @ query, scores[0], atol=1e-5)  # stored vectors give the same scores
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5) and len(index.vectors) == len(index)
    assert index.dense.describe()


def test_documents_listing_and_paging(index: Index):
    documents = index.documents
    assert sorted(documents) == sorted(TEXTS) and len(documents) == len(TEXTS)
    assert "orchard" in documents and "nope" not in documents and documents.get("nope") is None
    stored = documents["orchard"]
    assert stored.origin == "file" and stored.document.text == document_from_text(TEXTS["orchard"], "orchard").text
    pages, after = [], None
    while page := index.document_infos(limit=3, after=after):
        pages.append([info["document_id"] for info in page])
        after = page[-1]["document_id"]
    assert pages == [sorted(TEXTS)[:3], sorted(TEXTS)[3:]]
    info = index.document_infos(limit=1)[0]
    assert "text" not in info and info["passages"] == index.passage_count(info["document_id"]) > 0 and info["characters"] > 0
    paragraphs = index.paragraphs_of("orchard")
    assert [p.paragraph_index for p in paragraphs] == list(range(len(paragraphs))) and paragraphs
    assert all(stored.document.text[p.doc_start : p.doc_end] == p.text for p in paragraphs)
    assert index.paragraphs_of("nope") == [] and index.passage_count("nope") == 0 and index.source_url("nope") == ""
    largest = index.largest_documents(2)
    sizes = {d: len(document_from_text(t, d).text) for d, t in TEXTS.items()}
    assert list(largest) == sorted(sizes, key=lambda d: (-sizes[d], d))[:2] and all(largest[d] == sizes[d] for d in largest)


# ------------------------------------------------------------------------------ writing
def test_write_replace_delete_and_unchanged(index: Index, writer: IndexWriter, settings: Settings):
    index_dir = settings.index_dir
    added, report = writer.apply(index_dir, upserts=[document_from_text(LATE, "late")], origin="upload", previous=index)
    assert report.added == ["late"] and added.documents["late"].origin == "upload" and len(added.documents) == len(TEXTS) + 1
    assert added.fetch([int(added.lexical.search("Ada Example", 1)[0][0])]).popitem()[1][0].document_id == "late"

    changed = LATE.replace("1987", "1999")
    replaced, report = writer.apply(index_dir, upserts=[document_from_text(changed, "late")], origin="upload", previous=added)
    assert report.updated == ["late"] and replaced.version == added.version + 1
    texts = [p.text for p in replaced.passages if p.document_id == "late"]
    assert texts and all("1987" not in t for t in texts) and any("1999" in t for t in texts)
    assert len(replaced) == len(added)

    same, report = writer.apply(index_dir, upserts=[document_from_text(changed, "late")], origin="upload", previous=replaced)
    assert report.unchanged == ["late"] and same.version == replaced.version  # nothing written: no new version

    deleted, report = writer.apply(index_dir, deletes=["late"], previous=same)
    assert report.removed == ["late"] and "late" not in deleted.documents and len(deleted) == len(index)
    assert all(p.document_id != "late" for p in deleted.passages)
    ids, _ = deleted.lexical.search("Ada Example probe", 10)
    assert all(p.document_id != "late" for p, _ in deleted.fetch(ids.tolist()).values())


def test_sync_roots_removes_files_gone_from_a_folder(tmp_path: Path, index: Index, writer: IndexWriter, settings: Settings):
    folder = tmp_path / "corpus"
    documents = [document_from_text(TEXTS[name], f"{name}-file", source_path=str(folder / f"{name}.txt")) for name in ("harbour", "orchard")]
    synced, _ = writer.apply(settings.index_dir, upserts=documents, origin="file", previous=index)
    kept, report = writer.apply(settings.index_dir, upserts=documents[:1], origin="file", sync_roots=[folder], previous=synced)
    # Only the file gone from the synced folder goes; documents from elsewhere stay.
    assert report.removed == ["orchard-file"] and report.unchanged == ["harbour-file"]
    assert "orchard-file" not in kept.documents and set(TEXTS) <= set(kept.documents)


def test_refuse_overwrite_only_replaces_a_document_of_the_same_source(index: Index, writer: IndexWriter, settings: Settings):
    index_dir = settings.index_dir
    titled = document_from_text("Another text about the red beacon.", "harbour", {"title": "Harbour Guide"})
    with pytest.raises(DocumentConflict, match="'harbour' already exists"):
        writer.apply(index_dir, upserts=[titled], origin="upload", previous=index, refuse_overwrite=["harbour"])
    unchanged = load_index(settings)
    assert unchanged.version == index.version and unchanged.documents["harbour"].document.text == index.documents["harbour"].document.text
    # Not named in refuse_overwrite: replaced on purpose; then the same title may replace it.
    replaced, report = writer.apply(index_dir, upserts=[titled], origin="upload", previous=index, refuse_overwrite=["other"])
    assert report.updated == ["harbour"]
    again = document_from_text("The red beacon, described again.", "harbour", {"title": "Harbour Guide"})
    _, report = writer.apply(index_dir, upserts=[again], origin="upload", previous=replaced, refuse_overwrite=["harbour"])
    assert report.updated == ["harbour"]
    # A file: the same file name replaces, another file's does not; a new id is no conflict.
    notes = document_from_text("Notes about the pier.", "notes", source_path="notes.txt")
    later = document_from_text("Notes about the pier, revised.", "notes", source_path="notes.txt")
    other = document_from_text("Other notes.", "notes", source_path="Notes.md")
    _, report = writer.apply(index_dir, upserts=[notes], origin="upload", refuse_overwrite=["notes"])
    assert report.added == ["notes"]
    _, report = writer.apply(index_dir, upserts=[later], origin="upload", refuse_overwrite=["notes"])
    assert report.updated == ["notes"]
    with pytest.raises(DocumentConflict, match=r"from 'notes.txt'"):
        writer.apply(index_dir, upserts=[other], origin="upload", refuse_overwrite=["notes"])


def test_refuse_overwrite_without_an_index_is_no_conflict(writer: IndexWriter, settings: Settings):
    built, report = writer.apply(settings.index_dir, upserts=_documents(["harbour"]), origin="upload", refuse_overwrite=["harbour"])
    assert report.added == ["harbour"] and list(built.documents) == ["harbour"]


class _MeetingEncoder:
    """ENCODER, whose first encoding in each of two writers waits (up to a second) for the
    other's: both uploads have passed any check made before embedding when either commits."""

    def __init__(self) -> None:
        self.meeting = threading.Barrier(2)

    def __getattr__(self, name: str):
        return getattr(ENCODER, name)

    def encode(self, texts, **options):
        try:
            self.meeting.wait(timeout=1)
        except threading.BrokenBarrierError:  # a backend that embeds under its lock: one at a time
            pass
        return ENCODER.encode(texts, **options)


def test_refuse_overwrite_is_checked_and_written_in_one_step(index: Index, settings: Settings):
    """Two uploads of one new id with different titles at once: one is stored, the other refused
    (a check outside the writer lock let both through, the second replacing the first)."""
    encoder = _MeetingEncoder()
    outcomes: dict[str, object] = {}

    def upload(title: str) -> None:
        document = document_from_text(f"The {title} notes about the probe facility.", "probe", {"title": title})
        try:
            outcomes[title] = make_writer(settings, encoder).apply(settings.index_dir, upserts=[document], origin="upload",
                                                                    refuse_overwrite=["probe"])[1]
        except DocumentConflict as exc:
            outcomes[title] = exc

    threads = [threading.Thread(target=upload, args=(title,)) for title in ("First", "Second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [title for title, outcome in outcomes.items() if isinstance(outcome, DocumentConflict)]
    assert len(outcomes) == 2 and len(refused) == 1, outcomes
    stored = load_index(settings).documents["probe"].document
    assert stored.title != refused[0] and stored.title in ("First", "Second")


def test_a_reader_during_writes_sees_whole_passages(index: Index, writer: IndexWriter, settings: Settings):
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                current = load_index(settings)
                ids, _ = current.lexical.search("northern beacon harbour", 10)
                for passage, paragraph in current.fetch(ids.tolist()).values():
                    assert paragraph.text[passage.paragraph_start :].startswith(passage.text)
                current.dense.search(ENCODER.encode_query("northern harbour")[None, :], 5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(4):
            writer.apply(settings.index_dir, upserts=[document_from_text(LATE.replace("1987", f"19{n}{n}"), "late")], origin="upload")
    finally:
        stop.set()
        reader.join()
    assert not errors, errors


# ------------------------------------------------------------------------------ requirement 9
def test_scores_do_not_depend_on_when_a_document_was_written(backend: str, tmp_path: Path, request):
    bulk_settings = _settings(backend, tmp_path / "bulk", request)
    bulk, _ = make_writer(bulk_settings, ENCODER).apply(bulk_settings.index_dir, upserts=[*_documents(), document_from_text(LATE, "late")])
    later_settings = _settings(backend, tmp_path / "later", request)
    writer = make_writer(later_settings, ENCODER)
    first, _ = writer.apply(later_settings.index_dir, upserts=_documents())
    if backend == "milvus-lite":  # seal what is there, so the upload goes to a segment of its own
        first.client.flush(first.name)  # type: ignore[attr-defined]
    later, _ = writer.apply(later_settings.index_dir, upserts=[document_from_text(LATE, "late")], previous=first)
    for query in ("Ada Example", "northern harbour beacon", "probe facility 1987"):
        bulk_lexical, bulk_dense = _by_text(bulk, query)
        later_lexical, later_dense = _by_text(later, query)
        _close(bulk_lexical, later_lexical)
        _close(bulk_dense, later_dense)
    ids, scores = later.lexical.search("Ada Example", 3)
    assert later.fetch([int(ids[0])])[int(ids[0])][0].document_id == "late"  # the upload ranks first, as in a bulk build


def test_backends_agree_on_scores(tmp_path: Path, request):
    built = {}
    for backend in BACKENDS:
        settings = _settings(backend, tmp_path / backend, request)
        writer = make_writer(settings, ENCODER)
        first, _ = writer.apply(settings.index_dir, upserts=_documents())
        built[backend], _ = writer.apply(settings.index_dir, upserts=[document_from_text(LATE, "late")], previous=first)
    for query in ("Ada Example", "northern harbour beacon", "the lighthouse lamp"):
        embedded, milvus = (_by_text(built[b], query) for b in BACKENDS)
        _close(embedded[0], milvus[0])
        _close(embedded[1], milvus[1])
        ranked = [built[b].lexical.search(query, 5) for b in BACKENDS]
        texts = [[p.text for p, _ in (built[b].fetch(ids.tolist())[int(i)] for i in ids)] for b, (ids, _) in zip(BACKENDS, ranked, strict=True)]
        assert texts[0] == texts[1] and np.allclose(ranked[0][1], ranked[1][1], rtol=TOLERANCE)
