"""The on-disk index: manifest, atomic versions, incremental updates, model checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import HashingEncoder
from rag.errors import IndexIncompatible, IndexNotFound
from rag.ingest import document_from_text
from rag.settings import Settings
from rag.store.builder import IndexBuilder
from rag.store import compaction
from rag.store import database as db
from rag.store.corpus_index import FORMAT_VERSION, CorpusIndex
from rag.store.segments import segments_root


class CountingEncoder(HashingEncoder):
    """Counts how many texts were embedded, to check incremental re-embedding."""

    def __init__(self):
        super().__init__(64)
        self.encoded = 0

    def encode(self, texts, batch_size=64, show_progress=None):
        self.encoded += len(texts)
        return super().encode(texts, batch_size, show_progress)


def _builder(tmp_path: Path, encoder=None) -> tuple[IndexBuilder, Path]:
    settings = Settings(index_dir=tmp_path / "index", embedding_model="hashing:64")
    return IndexBuilder(settings, encoder or CountingEncoder()), settings.index_dir


def test_manifest_records_model_dimension_counts_and_hashes(fake_pipeline):
    index = fake_pipeline.index
    manifest = index.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedding_model"] == "hashing:256"
    assert manifest["dimension"] == 256
    assert manifest["passage_count"] == len(index.passages) == index.vectors.shape[0] == len(index.dense)
    assert manifest["document_count"] == 2 and set(index.documents) == {"nato-indo-pacific-pivot", "korea-2024-nato-summit"}
    assert all(len(s.document.content_hash) == 64 for _, s in index.documents.items())
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)


def test_only_new_or_changed_documents_are_embedded(tmp_path: Path, corpus_dir: Path):
    encoder = CountingEncoder()
    builder, index_dir = _builder(tmp_path, encoder)
    first_docs = [document_from_text("Alpha text one.\nAlpha text two.", "alpha"), document_from_text("Beta text.", "beta")]
    builder.apply(index_dir, upserts=first_docs)
    assert encoder.encoded == 2  # alpha's two wrapped lines are one paragraph
    _, report = builder.apply(index_dir, upserts=[document_from_text("Beta text, changed.", "beta"), first_docs[0]])
    assert encoder.encoded == 3  # only beta's one passage again
    assert report.updated == ["beta"] and report.unchanged == ["alpha"]
    index, report = builder.apply(index_dir, deletes=["alpha"])
    assert encoder.encoded == 3 and report.removed == ["alpha"]
    assert [p.document_id for p in index.passages] == ["beta"]
    reloaded = CorpusIndex.load(index_dir)
    assert [p.text for p in reloaded.passages] == ["Beta text, changed."]
    # vectors of kept documents are identical to a fresh embedding
    assert np.allclose(reloaded.vectors[0], HashingEncoder(64).encode(["Beta text, changed."])[0])


def test_sync_drops_files_deleted_from_the_folder(fake_pipeline, corpus_dir: Path):
    (corpus_dir / "korea-2024-nato-summit.txt").unlink()
    report = fake_pipeline.index_paths([corpus_dir])
    assert report.removed == ["korea-2024-nato-summit"]
    assert report.unchanged == ["nato-indo-pacific-pivot"] and report.embedded_passages == 0
    assert set(fake_pipeline.index.documents) == {"nato-indo-pacific-pivot"}


def test_uploads_survive_a_folder_sync(fake_pipeline, corpus_dir: Path):
    fake_pipeline.upsert_documents([document_from_text("Uploaded words.", "note")])
    fake_pipeline.index_paths([corpus_dir])
    assert "note" in fake_pipeline.index.documents


def _segments(index_dir: Path) -> set[str]:
    return {p.name for p in segments_root(index_dir).iterdir()}


def test_a_write_adds_one_segment_and_touches_nothing_else(tmp_path: Path):
    builder, index_dir = _builder(tmp_path)
    index, _ = builder.apply(index_dir, upserts=[document_from_text("One.", "one")])
    first = _segments(index_dir)
    stamp = {n: (segments_root(index_dir) / n / "vectors.npy").stat().st_mtime_ns for n in first}
    index, report = builder.apply(index_dir, upserts=[document_from_text("Two.", "two")], previous=index)
    assert report.version == index.version == 2
    assert first < _segments(index_dir) and len(_segments(index_dir)) == 2
    assert all((segments_root(index_dir) / n / "vectors.npy").stat().st_mtime_ns == t for n, t in stamp.items())
    assert set(CorpusIndex.load(index_dir).documents) == {"one", "two"}
    # nothing changed: no new version
    _, report = builder.apply(index_dir, upserts=[document_from_text("Two.", "two")])
    assert report.version == 2 and report.unchanged == ["two"]


def test_a_snapshot_keeps_its_passages_while_writers_replace_and_delete(tmp_path: Path):
    builder, index_dir = _builder(tmp_path)
    old, _ = builder.apply(index_dir, upserts=[document_from_text("Alpha first words.", "alpha"), document_from_text("Beta.", "beta")])
    new, _ = builder.apply(index_dir, upserts=[document_from_text("Alpha second words.", "alpha")], deletes=["beta"], previous=old)
    assert [p.text for p in old.passages] == ["Alpha first words.", "Beta."]  # the old snapshot is unchanged
    assert old.documents["alpha"].document.text == "Alpha first words." and "beta" in old.documents
    assert [p.text for p in new.passages] == ["Alpha second words."] and "beta" not in new.documents
    pid = next(iter(new.passages)).passage_id
    assert new.dense.search(new.vectors_of([pid]), 5)[1][0].tolist() == [pid]  # tombstoned rows are never returned
    ids, _ = new.lexical.search("alpha words", 5)
    assert ids.tolist() == [pid]
    assert len(old) == 2 and len(new) == 1 and len(new.dense) == 1


def test_compaction_merges_segments_and_purges_deleted_rows(tmp_path: Path):
    builder, index_dir = _builder(tmp_path)
    for n in range(compaction.MERGE_FACTOR):
        builder.apply(index_dir, upserts=[document_from_text(f"Document number {n} words.", f"d{n}")])
    builder.apply(index_dir, deletes=["d3"])
    assert compaction.due(index_dir) and len(_segments(index_dir)) == compaction.MERGE_FACTOR
    assert compaction.compact_all(index_dir, builder.settings) >= 1
    assert len(_segments(index_dir)) == 1 and not compaction.due(index_dir)
    index = CorpusIndex.load(index_dir)
    assert set(index.documents) == {f"d{n}" for n in range(compaction.MERGE_FACTOR)} - {"d3"}
    assert len(index.dense) == len(index) == compaction.MERGE_FACTOR - 1
    conn = db.connect(index_dir / db.DATABASE_FILE)
    assert conn.execute("SELECT count(*) FROM passages WHERE removed IS NOT NULL").fetchone()[0] == 0  # purged
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == compaction.MERGE_FACTOR - 1
    result = index.dense.search(HashingEncoder(64).encode(["Document number 7 words."]), 1)[1][0]
    assert index.passages[int(result[0])].document_id == "d7"


def test_a_format_2_index_is_refused_then_upgraded_by_rag_index(tmp_path: Path):
    index_dir = tmp_path / "index"
    version = index_dir / "v-0123456789ab"
    version.mkdir(parents=True)
    document = document_from_text("Old format words.", "old")
    (version / "documents.jsonl").write_text(json.dumps({**document.to_row(), "origin": "upload"}) + "\n")
    (version / "manifest.json").write_text(json.dumps({"format_version": 2}))
    (index_dir / "CURRENT").write_text(version.name + "\n")
    with pytest.raises(IndexIncompatible, match="format version 2.*rag index"):
        CorpusIndex.load(index_dir)
    builder, _ = _builder(tmp_path)
    index, report = builder.apply(index_dir, upserts=[document_from_text("New words.", "new")])
    assert set(index.documents) == {"old", "new"} and index.documents["old"].origin == "upload"
    assert not (index_dir / "CURRENT").exists() and not version.exists()


def test_loading_with_another_model_fails_clearly(fake_pipeline):
    with pytest.raises(IndexIncompatible, match="hashing:256.*other-model|other-model"):
        CorpusIndex.load(fake_pipeline.index_dir, expected_model="other-model")


def test_loading_another_format_version_fails_clearly(fake_pipeline):
    conn = db.connect(fake_pipeline.index_dir / db.DATABASE_FILE)
    db.set_meta(conn, format_version=999)
    conn.close()
    with pytest.raises(IndexIncompatible, match="format version 999"):
        CorpusIndex.load(fake_pipeline.index_dir)


def test_missing_index(tmp_path: Path):
    with pytest.raises(IndexNotFound, match="rag index"):
        CorpusIndex.load(tmp_path / "nothing")


def test_changing_model_re_embeds_everything(tmp_path: Path):
    builder, index_dir = _builder(tmp_path)
    builder.apply(index_dir, upserts=[document_from_text("Some text.", "a")])
    other = IndexBuilder(Settings(index_dir=index_dir, embedding_model="hashing:32"), HashingEncoder(32))
    index, report = other.apply(index_dir, upserts=[document_from_text("Some text.", "a")])
    assert index.manifest["dimension"] == 32 and report.embedded_passages == 1


def test_a_write_cleans_what_a_killed_writer_left(tmp_path: Path):
    builder, index_dir = _builder(tmp_path)
    builder.apply(index_dir, upserts=[document_from_text("Gamma text.", "gamma")])
    (segments_root(index_dir) / ".tmp-s-dead").mkdir()
    (segments_root(index_dir) / "s-unnamed").mkdir()  # published, but its commit never happened
    (segments_root(index_dir) / ".merge-s-dead").mkdir()  # a killed compaction's merge
    builder.apply(index_dir, upserts=[document_from_text("Delta text.", "delta")])
    assert not {".tmp-s-dead", "s-unnamed", ".merge-s-dead"} & _segments(index_dir)
    assert len(_segments(index_dir)) == 2


def test_loading_starts_over_when_compaction_removed_a_listed_segment(tmp_path: Path, monkeypatch):
    """A compaction that commits between reading the segment list and opening the segments
    removes one of them (seen as a FileNotFoundError under load in the full suite)."""
    import rag.store.corpus_index as corpus_index
    from rag.store.corpus_index import CorpusIndex

    builder, index_dir = _builder(tmp_path)
    builder.apply(index_dir, upserts=[document_from_text("Epsilon text.", "epsilon")])
    real = corpus_index.load_segment
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise FileNotFoundError("segment removed by a concurrent compaction")
        return real(*args, **kwargs)

    monkeypatch.setattr(corpus_index, "load_segment", flaky)
    index = CorpusIndex.load(index_dir)
    assert calls["n"] >= 2 and "epsilon" in index.documents


def test_a_loaded_segment_reads_its_rows_after_compaction_unlinked_the_file(tmp_path):
    """The snapshot opened the file; a compaction may delete it before the first query."""
    import numpy as np

    from rag.store.segments import RowReader

    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = tmp_path / "vectors.npy"
    np.save(path, vectors)
    reader = RowReader(path)
    path.unlink()
    assert np.array_equal(reader.rows(np.array([3, 1])), vectors[[3, 1]])


def test_a_database_file_without_its_schema_yet_is_no_index(tmp_path):
    """A reader that opens store.sqlite between the first writer's creating the file and its
    schema got `sqlite3.OperationalError: no such table: meta`; it is "no index yet"."""
    import sqlite3

    from rag.errors import IndexNotFound
    from rag.store.corpus_index import CorpusIndex, database_path

    path = database_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()
    with pytest.raises(IndexNotFound):
        CorpusIndex.load(tmp_path)
