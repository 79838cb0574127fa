"""The on-disk index: documents, paragraphs, passages, vectors, FAISS and BM25, plus a manifest.

Layout (see index/README.md)::

    index/CURRENT            name of the live version folder (replaced atomically)
    index/.lock              writer lock (one writer at a time, across processes)
    index/v-<time>-<rand>/   manifest.json documents.jsonl paragraphs.jsonl passages.jsonl
                             vectors.npy dense/ bm25/

Writers build a complete new version folder, fsync it, then atomically replace CURRENT, so a
reader (or a crash) only ever sees a complete old or complete new index.  A loaded
``CorpusIndex`` is an immutable snapshot.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag import __version__
from rag.errors import IndexIncompatible, IndexNotFound
from rag.settings import get_settings
from rag.store.base import VectorStore
from rag.store.factory import drop_vector_store, load_vector_store
from rag.store.lexical import LexicalIndex
from rag.types import Document, Paragraph, Passage

log = logging.getLogger(__name__)

# Bump when the layout or the meaning of stored fields changes.
FORMAT_VERSION = 2  # 2: canonical text with typed blocks; paragraphs with kind, source span, pages
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
VERSION_PREFIX = "v-"
# Older versions kept after a switch: a process that read CURRENT just before the switch can
# still open the folder it named.
KEEP_OLD_VERSIONS = 1


@dataclass(frozen=True)
class StoredDocument:
    document: Document
    origin: str  # "file" (from a scanned folder) or "upload" (from the API)


class CorpusIndex:
    """A loaded, immutable index version."""

    def __init__(
        self,
        manifest: dict[str, Any],
        documents: dict[str, StoredDocument],
        paragraphs: dict[tuple[str, int], Paragraph],
        passages: list[Passage],
        vectors: np.ndarray,
        dense: VectorStore | None,
        lexical: LexicalIndex,
        folder: Path | None = None,
    ):
        self.manifest = manifest
        self.documents = documents
        self.paragraphs = paragraphs
        self.passages = passages
        self.vectors = vectors
        self.dense = dense
        self.lexical = lexical
        self.folder = folder

    @property
    def model(self) -> str:
        return self.manifest["embedding_model"]

    def __len__(self) -> int:
        return len(self.passages)

    def paragraph_of(self, passage: Passage) -> Paragraph:
        return self.paragraphs[(passage.document_id, passage.paragraph_index)]

    def passages_by_document(self) -> dict[str, list[Passage]]:
        grouped: dict[str, list[Passage]] = {doc_id: [] for doc_id in self.documents}
        for passage in self.passages:
            grouped[passage.document_id].append(passage)
        return grouped

    # ----------------------------------------------------------------------- persistence
    def save(self, index_dir: Path) -> Path:
        """Write this snapshot as a new version and make it current; returns its folder."""
        index_dir.mkdir(parents=True, exist_ok=True)
        folder = index_dir / f"{VERSION_PREFIX}{os.urandom(6).hex()}"
        tmp = index_dir / f".tmp-{folder.name}"
        tmp.mkdir()
        try:
            _write_jsonl(tmp / "documents.jsonl", ({**d.document.to_row(), "origin": d.origin} for d in self.documents.values()))
            _write_jsonl(tmp / "paragraphs.jsonl", (asdict(p) for p in self.paragraphs.values()))
            _write_jsonl(tmp / "passages.jsonl", (asdict(p) for p in self.passages))
            np.save(tmp / "vectors.npy", np.ascontiguousarray(self.vectors, dtype=np.float32))
            try:
                self.dense.save(tmp / "dense")
            except RuntimeError as exc:  # FAISS reports a full disk as a C++ error, not OSError
                if _disk_full(tmp):
                    raise OSError(errno.ENOSPC, f"no space left on device while writing the vector index: {exc}") from exc
                raise
            self.lexical.save(tmp / "bm25")
            (tmp / MANIFEST_FILE).write_text(json.dumps(self.manifest, indent=2, sort_keys=True))
            _fsync_tree(tmp)
            os.rename(tmp, folder)
            _fsync_dir(index_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            drop = getattr(self.dense, "drop", None)  # a collection built for this version
            if drop is not None:
                drop()
            raise
        try:
            _atomic_write(index_dir / CURRENT_FILE, folder.name + "\n")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # never leave a version CURRENT does not name
            raise
        self.folder = folder
        _remove_old_versions(index_dir, keep=folder.name)
        return folder

    @classmethod
    def load(
        cls, index_dir: Path, expected_model: str | None = None, mmap: bool = True, settings=None, with_dense: bool = True
    ) -> CorpusIndex:
        """``settings`` (default: the environment's) give the vector store's connection details
        and query-time knobs; the manifest says which backend built the version.  The index
        builder passes ``with_dense=False``: it reuses vectors, never the old vector store."""
        folder = current_version(index_dir)
        manifest = read_manifest(folder)
        check_compatible(manifest, expected_model, index_dir)
        documents = {}
        for row in _read_jsonl(folder / "documents.jsonl"):
            origin = row.pop("origin", "file")
            documents[row["document_id"]] = StoredDocument(Document.from_row(row), origin)
        paragraphs = {(p.document_id, p.paragraph_index): p for p in (Paragraph(**r) for r in _read_jsonl(folder / "paragraphs.jsonl"))}
        passages = [Passage(**r) for r in _read_jsonl(folder / "passages.jsonl")]
        vectors = np.load(folder / "vectors.npy", mmap_mode="r" if mmap else None)
        dense = None
        if with_dense:
            dense = load_vector_store(folder / "dense", manifest.get("dense", {}), settings or get_settings(), mmap=mmap)
        lexical = LexicalIndex.load(folder / "bm25")
        return cls(manifest, documents, paragraphs, passages, vectors, dense, lexical, folder)


def current_version(index_dir: Path) -> Path:
    pointer = index_dir / CURRENT_FILE
    if not pointer.is_file():
        raise IndexNotFound(f"no index at {index_dir}: run `rag index` first")
    folder = index_dir / pointer.read_text().strip()
    if not (folder / MANIFEST_FILE).is_file():
        raise IndexNotFound(f"index at {index_dir} points to a missing version {folder.name}")
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST_FILE).read_text())


def check_compatible(manifest: dict[str, Any], expected_model: str | None, index_dir: Path) -> None:
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this rag {__version__} reads "
            f"version {FORMAT_VERSION}: rebuild it with `rag index`"
        )
    if expected_model is not None and manifest.get("embedding_model") != expected_model:
        raise IndexIncompatible(
            f"index at {index_dir} was built with embedding model {manifest.get('embedding_model')!r} "
            f"but the service is configured with {expected_model!r}: set RAG_EMBEDDING_MODEL to match "
            "or rebuild the index with `rag index`"
        )


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _disk_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1024 * 1024


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        else:
            _fsync_dir(path)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _remove_old_versions(index_dir: Path, keep: str) -> None:
    versions = sorted(
        (p for p in index_dir.iterdir() if p.is_dir() and p.name.startswith(VERSION_PREFIX) and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in versions[KEEP_OLD_VERSIONS:]:
        try:
            drop_vector_store(old / "dense", read_manifest(old).get("dense", {}), get_settings())
        except (OSError, ValueError):
            pass  # no readable manifest: nothing outside the folder to free
        shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".tmp-*"):  # left by a writer that was killed mid-build
        shutil.rmtree(stale, ignore_errors=True)
    # A writer killed between writing and renaming CURRENT's temporary file; writers hold the
    # lock here and ours is renamed already, so any left is stale.
    for stale in index_dir.glob(f".{CURRENT_FILE}.*.tmp"):
        stale.unlink(missing_ok=True)
