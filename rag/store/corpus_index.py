"""The on-disk index and the read snapshot a request uses.

Layout (format 4, see index/README.md)::

    index/store.sqlite[-wal]   documents, paragraphs, passages, tombstones, the segment list,
                               BM25 statistics and the manifest (rag/store/database.py)
    index/segments/s-*/        immutable vector segments (rag/store/segments.py)
    index/lexical/             BM25 postings (tantivy), derived from store.sqlite (rag/store/lexical.py)
    index/.lock                writer lock (one writer at a time, across processes)
    index/.compact.lock        one compaction at a time (rag/store/compaction.py)

A ``CorpusIndex`` is a snapshot at one committed version: its segments and tombstones are
loaded when it is opened (reusing the segments of the previous snapshot, so a reload costs
what changed), and texts are fetched from SQLite per query, filtered to that version.  Nothing
here holds the corpus text in memory.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import __version__
from rag.errors import IndexDamaged, IndexIncompatible, IndexNotFound
from rag.settings import Settings
from rag.store import database as db
from rag.store import lexical
from rag.store import queries
from rag.store.protocol import StoredDocument
from rag.store.recovery import repair_segment
from rag.store.segments import DenseIndex, Segment, load_segment
from rag.types import Paragraph, Passage

if TYPE_CHECKING:
    from rag.embedding import Encoder

# Bump when the layout or the meaning of stored fields changes.
# 2: canonical text with typed blocks (JSONL files per version); 3: SQLite + vector segments;
# 4: BM25 in tantivy (index/lexical/) instead of SQLite FTS5 (upgraded in place by rag index).
FORMAT_VERSION = 4
LEGACY_CURRENT_FILE = "CURRENT"  # format 2's pointer to its live version folder


def database_path(index_dir: Path) -> Path:
    return Path(index_dir) / db.DATABASE_FILE


def index_exists(index_dir: Path) -> bool:
    """Some index (this format or an older one) is in the folder."""
    return database_path(index_dir).exists() or legacy_format(index_dir)


def legacy_format(index_dir: Path) -> bool:
    """An index written by format 2 (version folders and CURRENT) that is not upgraded yet:
    the upgrade removes CURRENT last, after format 3 has committed."""
    return (Path(index_dir) / LEGACY_CURRENT_FILE).is_file()


def check_compatible(manifest: dict[str, Any], expected_model: str | None, index_dir: Path) -> None:
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this rag {__version__} reads "
            f"version {FORMAT_VERSION}: run `rag index --index {index_dir}` to upgrade it (or delete the folder and rebuild)"
        )
    if expected_model is not None and manifest.get("embedding_model") != expected_model:
        raise IndexIncompatible(
            f"index at {index_dir} was built with embedding model {manifest.get('embedding_model')!r} "
            f"but the service is configured with {expected_model!r}: set RAG_EMBEDDING_MODEL to match "
            "or rebuild the index with `rag index`"
        )


log = logging.getLogger(__name__)


class CorpusIndex:
    """An immutable snapshot of the index folder at one committed version: the embedded
    backend's ``Index`` (rag/store/protocol.py)."""

    def __init__(self, index_dir: Path, connections: db.Connections, meta: dict[str, Any], dense: DenseIndex,
                 max_passage_id: int, lexical_index: Any = None, ranker: lexical.Ranker | None = None,
                 settings: Settings | None = None):
        self.folder = Path(index_dir)
        self.settings = settings  # FAISS search parameters (None: the stored ones), kept for reopen
        self.connections = connections
        self.lexical_index = lexical_index  # tantivy.Index, shared by this folder's snapshots
        self.ranker = ranker
        self.meta = meta
        self.version = int(meta.get("version", 0))
        self.dense = dense
        self.max_passage_id = max_passage_id
        self.documents = DocumentsView(self)
        self.passages = PassagesView(self)
        self.lexical = LexicalView(self)
        self.lexical_stale = False  # BM25 serves an older commit than this version (see load)

    @property
    def conn(self):
        return self.connections.get()

    @property
    def model(self) -> str:
        return self.meta["embedding_model"]

    @property
    def manifest(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.meta.items() if not k.startswith("next_")},
                "dense": self.dense.describe(), "lexical": lexical.DESCRIPTION,
                "document_count": self.meta.get("live_documents", 0), "passage_count": self.meta.get("live_passages", 0)}

    def __len__(self) -> int:
        return int(self.meta.get("live_passages", 0))

    def latest_version(self) -> int | None:
        """The folder's latest committed version: one indexed read (None: unreadable now)."""
        try:
            return db.version_of(self.conn)
        except sqlite3.Error as exc:
            log.warning("cannot read the latest version of the index at %s (%s): serving version %d", self.folder, exc, self.version)
            return None

    def reopen(self, expected_model: str | None = None, encoder: Encoder | None = None) -> CorpusIndex:
        return CorpusIndex.load(self.folder, expected_model=expected_model, settings=self.settings, previous=self, repair_with=encoder)

    # ----------------------------------------------------------------------- per query
    def fetch(self, passage_ids: list[int]) -> dict[int, tuple[Passage, Paragraph]]:
        """The passages (with their paragraphs) visible in this snapshot, by id."""
        if not passage_ids:
            return {}
        return queries.visible_passages_with_paragraphs(self.conn, self.version, passage_ids)

    def vectors_of(self, passage_ids) -> np.ndarray:
        return self.dense.vectors_of(np.asarray(passage_ids, dtype=np.int64))

    def paragraphs_of(self, document_id: str) -> list[Paragraph]:
        return queries.visible_paragraphs(self.conn, self.version, document_id)

    def document_infos(self, limit: int | None = None, after: str | None = None) -> list[dict]:
        """Metadata, passage and character counts (no texts) of the documents after ``after``, by
        id, at most ``limit`` of them: a page costs its rows (the documents_by_id index), not the corpus."""
        return queries.visible_document_infos(self.conn, self.version, limit, after)

    def passage_count(self, document_id: str) -> int:
        return queries.visible_passage_count(self.conn, self.version, document_id)

    def source_url(self, document_id: str) -> str:
        return queries.visible_source_url(self.conn, self.version, document_id)

    def largest_documents(self, limit: int) -> dict[str, int]:
        """{document id: characters} of the ``limit`` largest documents."""
        return queries.visible_largest_documents(self.conn, self.version, limit)

    @property
    def vectors(self) -> np.ndarray:
        """Every live vector in passage-id order (tests and tools; O(corpus))."""
        ids = [p.passage_id for p in self.passages]
        return self.vectors_of(ids)

    # ----------------------------------------------------------------------- loading
    @classmethod
    def load(cls, index_dir: Path, expected_model: str | None = None, settings: Settings | None = None,
             previous: CorpusIndex | None = None, repair_with: Encoder | None = None) -> CorpusIndex:
        """Open the latest committed version; segments already open in ``previous`` are reused.

        Derived files that cannot be opened are rebuilt from store.sqlite (issue 20, item 9): the
        lexical folder by ``lexical.sync``; a damaged vector segment by ``repair_segment`` with
        ``repair_with`` (re-embedding only when its vectors.npy is damaged); without it the load
        raises IndexDamaged naming the file.  When BM25 cannot be brought up to date now (a full
        disk), the snapshot serves its last commit and ``lexical_stale`` says so."""
        index_dir = Path(index_dir)
        path = database_path(index_dir)
        if not path.exists() or legacy_format(index_dir):
            if legacy_format(index_dir):
                raise IndexIncompatible(
                    f"index at {index_dir} has format version 2 (one folder per version), this rag {__version__} reads "
                    f"version {FORMAT_VERSION}: run `rag index --index {index_dir}` to upgrade it in place")
            raise IndexNotFound(f"no index at {index_dir}: run `rag index` first")
        same = previous if previous is not None and previous.folder == index_dir else None
        connections = same.connections if same is not None else db.Connections(path)
        conn = connections.get()
        reuse: dict[str, Segment] = {s.name: s for s in same.dense.segments} if same is not None else {}
        text_index = same.lexical_index if same is not None else None
        stale, repaired = False, 0
        for attempt in range(LOAD_ATTEMPTS):
            # One read transaction: the meta, the segment list and the tombstones of one commit.
            with db.transaction(conn, "DEFERRED"):
                try:
                    meta = db.get_meta(conn)
                except sqlite3.OperationalError as exc:
                    if "no such table" not in str(exc):
                        raise
                    meta = {}  # the first writer has created the file but not yet its schema
                if not meta:
                    raise IndexNotFound(f"no index at {index_dir}: run `rag index` first")
                check_compatible(meta, expected_model, index_dir)
                lagging = lexical.behind(index_dir, conn, int(meta.get("version", 0)))
                lexical_stats = lexical.stats(conn)
                names = queries.segment_names(conn)
                dead = queries.tombstones_by_segment(conn)
                max_id = queries.max_passage_id(conn)
            if not lagging and text_index is None:
                try:
                    text_index = lexical.open_index(index_dir)
                except (OSError, ValueError):
                    lagging = True  # missing or unreadable (a tantivy panic included): sync rebuilds it
            if lagging and not stale and lexical.try_sync(index_dir, conn):
                # A writer was killed between its SQLite commit and the BM25 sync (or the
                # lexical folder is gone): replayed; read again.
                text_index = None
                continue
            stale = stale or lagging  # the sync failed or a writer is on it: the last lexical commit serves
            try:
                segments = [reuse.get(name) or load_segment(index_dir, name, settings, final=attempt == LOAD_ATTEMPTS - 1)
                            for name in names]
            except FileNotFoundError:
                # Compaction (another thread or process) committed a merge and removed one of
                # these segments after our read: the next read lists the merged segment instead.
                continue
            except IndexDamaged as exc:
                if repair_with is None or repaired >= MAX_REPAIRS:
                    raise
                repair_segment(index_dir, exc.segment, settings, repair_with, exc)
                repaired += 1
                continue
            text_index, ranker = _open_ranker(index_dir, text_index, lexical_stats)
            break
        else:
            raise IndexIncompatible(f"the index at {index_dir} changed under every attempt to load it: retry, or run `rag index --index {index_dir}`")
        dense = DenseIndex(segments, {k: np.array(sorted(v), dtype=np.int64) for k, v in dead.items()}, int(meta.get("dimension", 0)))
        index = cls(index_dir, connections, meta, dense, int(max_id if max_id is not None else -1), text_index, ranker, settings)
        index.lexical_stale = stale or ranker is None
        return index


def _open_ranker(index_dir: Path, text_index: Any, lexical_stats: tuple[int, int]) -> tuple[Any, lexical.Ranker | None]:
    """(tantivy index, BM25 over it); (None, None) when it cannot be read now (a damaged folder
    whose rebuild failed): the snapshot searches dense only, logged, until a sync rebuilds it."""
    try:
        if text_index is None:
            text_index = lexical.open_index(index_dir)
        return text_index, lexical.Ranker.open(text_index, *lexical_stats)
    except (OSError, ValueError) as exc:
        log.warning("the lexical index at %s cannot be read (%s): searching without BM25 until it is rebuilt", index_dir, exc)
        return None, None


# A damaged segment is repaired once per load; more in one load means something keeps damaging them.
MAX_REPAIRS = 3
# Reading a commit's segment list and opening its segments are two steps; a compaction that
# commits in between removes segments of the older list, so the load starts over (the merge
# itself takes seconds, so a second attempt practically always finds the new list).
LOAD_ATTEMPTS = 5


class DocumentsView(Mapping[str, StoredDocument]):
    """The snapshot's documents, read from SQLite on access (one indexed lookup per ``get``)."""

    def __init__(self, index: CorpusIndex):
        self._index = index

    def __getitem__(self, document_id: str) -> StoredDocument:
        found = queries.visible_document(self._index.conn, self._index.version, document_id)
        if found is None:
            raise KeyError(document_id)
        return found

    def __contains__(self, document_id: object) -> bool:
        return queries.has_visible_document(self._index.conn, self._index.version, document_id)

    def __iter__(self) -> Iterator[str]:
        return iter(queries.visible_document_ids(self._index.conn, self._index.version))

    def __len__(self) -> int:
        return int(self._index.meta.get("live_documents", 0))

    def items(self):  # one query instead of one per document
        return [(d.document.document_id, d) for d in queries.visible_documents(self._index.conn, self._index.version)]


class PassageLookup:
    """``len`` and lookup by id through the index's ``fetch``; each backend adds iteration."""

    def __init__(self, index: Any):  # CorpusIndex or MilvusIndex
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, passage_id: int) -> Passage:
        found = self._index.fetch([int(passage_id)])
        if passage_id not in found:
            raise KeyError(passage_id)
        return found[passage_id][0]


class PassagesView(PassageLookup):
    """The snapshot's live passages: ``len``, iteration in id order, lookup by id."""

    def __iter__(self) -> Iterator[Passage]:
        yield from queries.visible_passages(self._index.conn, self._index.version)


class LexicalView:
    """BM25 restricted to the snapshot's passages.  The tantivy searcher was opened at or after
    this snapshot's version: passages added later have larger ids and are dropped here, passages
    removed later are simply not found, and ``fetch`` reads only rows visible in the snapshot."""

    def __init__(self, index: CorpusIndex):
        self._index = index

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, BM25 scores) of the ``k`` best passages with a positive score."""
        ranker = self._index.ranker
        if ranker is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids, scores = ranker.top(lexical.tokenize_query(query), k)
        keep = ids <= self._index.max_passage_id  # committed after this snapshot: not ours
        return ids[keep][:k], scores[keep][:k]

    def scores_of(self, query: str, ids) -> dict[int, float]:
        ranker = self._index.ranker
        return ranker.scores_of(lexical.tokenize_query(query), list(ids)) if ranker is not None else {}
