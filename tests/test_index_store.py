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
from rag.store.corpus_index import CURRENT_FILE, FORMAT_VERSION, CorpusIndex


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
    manifest = json.loads((index.folder / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedding_model"] == "hashing:256"
    assert manifest["dimension"] == 256
    assert manifest["passage_count"] == len(index.passages) == index.vectors.shape[0] == len(index.dense)
    assert set(manifest["documents"]) == {"nato-indo-pacific-pivot", "korea-2024-nato-summit"}
    assert all(len(d["content_hash"]) == 64 for d in manifest["documents"].values())
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


def test_writes_are_atomic_versions(tmp_path: Path):
    builder, index_dir = _builder(tmp_path)
    builder.apply(index_dir, upserts=[document_from_text("One.", "one")])
    first = (index_dir / CURRENT_FILE).read_text().strip()
    builder.apply(index_dir, upserts=[document_from_text("Two.", "two")])
    second = (index_dir / CURRENT_FILE).read_text().strip()
    assert first != second and (index_dir / second / "manifest.json").exists()
    # a half-written version left by a crash is ignored and cleaned up
    (index_dir / ".tmp-v-crashed").mkdir()
    (index_dir / ".tmp-v-crashed" / "passages.jsonl").write_text("{broken")
    assert set(CorpusIndex.load(index_dir).documents) == {"one", "two"}
    builder.apply(index_dir, upserts=[document_from_text("Three.", "three")])
    assert not (index_dir / ".tmp-v-crashed").exists()
    versions = [p for p in index_dir.iterdir() if p.name.startswith("v-")]
    assert len(versions) == 2  # the current one and one previous


def test_loading_with_another_model_fails_clearly(fake_pipeline):
    with pytest.raises(IndexIncompatible, match="hashing:256.*other-model|other-model"):
        CorpusIndex.load(fake_pipeline.index_dir, expected_model="other-model")


def test_loading_another_format_version_fails_clearly(fake_pipeline):
    manifest_path = fake_pipeline.index.folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
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
    (index_dir / ".CURRENT.99999.tmp").write_text("v-dead\n")
    (index_dir / ".tmp-v-dead").mkdir()
    builder.apply(index_dir, upserts=[document_from_text("Delta text.", "delta")])
    assert not list(index_dir.glob(".CURRENT.*.tmp")) and not list(index_dir.glob(".tmp-*"))
