"""BM25 over passages: tantivy finds the candidates (block-max WAND), Python scores them exactly.

Why tantivy (issue 13, 10^6 passages through the service, /v1/search p50 <= 30 ms): format 3
read SQLite FTS5 postings and scored them in Python; it had to visit every posting of every
query term, so BM25 alone took 0.9 / 3.6 / 49 ms p50 at 10^3 / 10^4 / 10^5 passages and would
have missed 30 ms by far at 10^6.  tantivy (a maintained Rust engine, Lucene's design:
immutable segments, deletes as bitsets, background merges) prunes with block-max WAND and
keeps its postings memory-mapped.  Measured on 2 shared cores, SQuAD dev paragraphs cycled to
10^6 passages, 200 SQuAD questions: tantivy's top 100 in 2.1 ms p50 / 6.8 ms p95, plus the
exact re-scoring below 4.5 ms p50 / 9.2 ms p95 in all; built in 15 s (2 writer threads), 434 MB
on disk, mapped, not on the heap.  FTS5 as before: 49 ms p50 at 10^5 already.  bm25s (a
precomputed score matrix) cannot add a document without rebuilding every score.

Scores stay bm25s' ``method="lucene"`` with k1=1.5, b=0.75 (what this index always ran):

    idf(t)      = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(q, d) = sum over query tokens t (repeats count) of idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))

tantivy fixes k1 at 1.2 (BEIR SciFact nDCG@10 0.677 with it against 0.686 for bm25s at k1=1.5 on
the same tokens), so tantivy only proposes candidates: its best ``RESCORE_FACTOR`` * k passages
are re-scored with the formula above from their stored tokens (tantivy's doc store), with N and
the mean length |d| from ``lexical_stats`` (SQLite) and df from tantivy.  On SciFact re-scoring
the best 50 already gives bm25s' nDCG@10 exactly (0.6863 in that check; eval/RESULTS.md for
``rag eval``).  df, as in Lucene, still counts a deleted passage until its segment is merged.

Tokenisation is ours: bm25s' tokenizer, English stopwords, the Snowball stemmer; the stems are
indexed space-joined with tantivy's ``whitespace`` tokenizer, so a query's stems and the
indexed ones are the same strings.

Consistency and crash safety: SQLite (rag/store/database.py) is the source of truth and the
tantivy folder ``index/lexical/`` is derived from it.  ``meta.lexical_version`` records the
SQLite version the folder reflects; ``sync`` (always under the writer lock) replays what changed
since (passages added after it, passages removed after it: both indexed columns, so the work is
proportional to the change), commits tantivy, then records the version.  Replays are idempotent
(a passage is deleted before it is added), so a process killed anywhere, even between the
tantivy commit and the record, leaves a state that the next ``sync`` completes; a missing or
unreadable folder (a tantivy panic on a damaged file included) is rebuilt from SQLite.  A
writer commits SQLite, then syncs before it releases the lock; a reader that finds the record
behind the version it loads syncs first when no writer holds the lock (``try_sync``).  A sync
that fails (a full disk) fails neither the committed write nor any read: the snapshot serves
tantivy's last commit, with the statistics recorded for it, until a later sync succeeds.
"""
from __future__ import annotations

import logging
import math
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
import tantivy

from rag.store import database as db
from rag.store import queries
from rag.store.maintenance import try_writer_lock
from rag.types import Passage

logging.getLogger("bm25s").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

STEMMER_LANGUAGE = "english"
BM25_K1 = 1.5  # Lucene's defaults, as bm25s ran them (rag/store/lexical.py before format 3)
BM25_B = 0.75
# Candidates re-scored per result: 2x the depth asked for (see the module docstring).
RESCORE_FACTOR = 2
FOLDER = "lexical"
VERSION_KEY = db.LEXICAL_VERSION_KEY  # meta: the SQLite version index/lexical/ reflects (-1: rebuild)
DESCRIPTION = {"engine": f"tantivy {getattr(tantivy, '__version__', '')} candidates (block-max WAND), bm25s lucene re-scoring",
               "ranking": f"bm25 lucene (k1={BM25_K1}, b={BM25_B})", "stemmer": STEMMER_LANGUAGE, "stopwords": "en",
               "tokenizer": f"bm25s {bm25s.__version__}", "rescore_factor": RESCORE_FACTOR}
# Writer memory: a one-document write needs little; a rebuild of 10^6 passages gets 2 threads.
SMALL_HEAP, BULK_HEAP, BULK_FROM = 30_000_000, 400_000_000, 20_000
BATCH = 10_000  # passages tokenised and added per step of a replay
OPEN_ATTEMPTS = 5


class Tokenizer:
    """The bm25s tokenizer with our stemmer; one per thread (PyStemmer objects are not shared)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer(STEMMER_LANGUAGE)

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        if not texts:
            return []
        return bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)


_tokenizers = threading.local()


def tokenize_query(query: str) -> list[str]:
    """A query's terms, as passages' are indexed (one tokenizer per thread)."""
    tokenizer = getattr(_tokenizers, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _tokenizers.tokenizer = Tokenizer()
    return tokenizer([query])[0]


def passage_text(passage: Passage) -> str:
    """What BM25 reads of a passage: the title and heading path lead its text."""
    return " ".join(part for part in (passage.title, passage.section, passage.context, passage.text) if part)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("pid", indexed=True, fast=True)
    # Frequencies without positions (no phrase queries); stored: the tokens re-scored per query.
    builder.add_text_field("tokens", stored=True, tokenizer_name="whitespace", index_option="freq")
    return builder.build()


SCHEMA_TANTIVY = _schema()


def folder_of(index_dir: Path) -> Path:
    return Path(index_dir) / FOLDER


def is_panic(exc: BaseException) -> bool:
    """A Rust panic inside tantivy: pyo3 raises ``pyo3_runtime.PanicException``, a BaseException
    (not an Exception) that no module exports, so it is recognised by its type's name.  A .term
    file truncated to 4 bytes panics in ``Index.open`` ("assertion failed: start <=
    orig_range.end", issue 20 item 9) where other truncations raise ValueError."""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _unpanicked(call, what: str):
    """``call()``, with a tantivy panic turned into a ValueError naming ``what``."""
    try:
        return call()
    except BaseException as exc:
        if not is_panic(exc):
            raise
        raise ValueError(f"tantivy panicked reading {what}: {exc}") from None


def open_index(index_dir: Path) -> tantivy.Index:
    """The tantivy index of ``index_dir`` (raises OSError/ValueError when missing or unreadable,
    a panic on a damaged file included)."""
    folder = folder_of(index_dir)
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no lexical index in {folder}")
    index = _unpanicked(lambda: tantivy.Index.open(str(folder)), str(folder))
    index.config_reader("Manual")  # a snapshot reloads explicitly; no watcher thread
    return index


def try_sync(index_dir: Path, conn: sqlite3.Connection) -> bool:
    """``sync`` when no writer holds the lock; False (and the failure logged) when one does or the
    sync fails: a full disk, a damaged folder that cannot be rebuilt now.  Readers then serve the
    last lexical commit: its statistics in SQLite are those of its recorded version, passages
    added since are found by the dense side only until a later sync (the writer's, or the
    service's background retry), and passages removed since are dropped by ``fetch``."""
    with try_writer_lock(index_dir) as mine:
        if not mine:
            return False
        try:
            sync(index_dir, conn)
        except Exception as exc:  # noqa: BLE001 - derived data: reads go on without it
            db.roll_back_open(conn)
            log.warning("the lexical index at %s could not be brought up to date (%s): serving its last commit", folder_of(index_dir), exc)
            return False
    return True


def recorded_version(conn: sqlite3.Connection) -> int:
    return db.lexical_version(conn)


def record_unchanged(conn: sqlite3.Connection, version: int) -> None:
    """Inside a write transaction that changes no passage (a compaction): still in step."""
    db.set_lexical_version(conn, version)


def invalidate(conn: sqlite3.Connection) -> None:
    """Inside a write transaction that rewrites every passage row: the next sync rebuilds."""
    db.set_lexical_version(conn, -1)


def behind(index_dir: Path, conn: sqlite3.Connection, version: int) -> bool:
    return recorded_version(conn) < version or not (folder_of(index_dir) / "meta.json").is_file()


def stats(conn: sqlite3.Connection) -> tuple[int, int]:
    """(passages, tokens) in the lexical index."""
    return queries.lexical_totals(conn)


def sync(index_dir: Path, conn: sqlite3.Connection) -> int:
    """Bring index/lexical/ up to the latest SQLite version; the caller holds the writer lock.
    Returns the passages added (a rebuild adds every live one)."""
    target = db.version_of(conn)
    done = recorded_version(conn)
    folder = folder_of(index_dir)
    try:
        index = open_index(index_dir)
    except (OSError, ValueError) as exc:
        if folder.exists():
            log.warning("lexical index at %s unreadable (%s): rebuilding it from store.sqlite", folder, exc)
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        index, done = tantivy.Index(SCHEMA_TANTIVY, str(folder), reuse=False), -1
    if done >= target:
        return 0
    rebuild = done < 0
    if rebuild:
        dead: list[int] = []
        count = queries.live_passage_count(conn)
        adds = queries.live_passage_batches(conn, BATCH)
    else:
        dead = queries.passage_ids_removed_since(conn, done)
        count = queries.passage_count_added_since(conn, done)
        adds = queries.passage_batches_added_since(conn, done, BATCH)
    bulk = count >= BULK_FROM
    writer = index.writer(BULK_HEAP if bulk else SMALL_HEAP, 2 if bulk else 1)
    lengths: list[tuple[int, int]] = []
    try:
        if rebuild:
            writer.delete_all_documents()
        _delete(writer, dead)
        tokenizer = Tokenizer()
        for passages in adds:
            ids = [p.passage_id for p in passages]
            _delete(writer, ids)  # a replay after a crash may have added them already
            texts = [passage_text(p) for p in passages]
            for pid, tokens in zip(ids, tokenizer(texts), strict=True):
                doc = tantivy.Document()
                doc.add_unsigned("pid", pid)
                doc.add_text("tokens", " ".join(tokens))
                writer.add_document(doc)
                lengths.append((pid, len(tokens)))
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    finally:
        writer.wait_merging_threads()
    with db.transaction(conn):
        if rebuild:
            db.delete_lexical_totals(conn)
        _record(conn, lengths, [] if rebuild else dead)
        db.set_lexical_version(conn, target)
    return len(lengths)


def _record(conn: sqlite3.Connection, added: list[tuple[int, int]], removed: list[int]) -> None:
    """SQLite's BM25 totals follow tantivy's commit; a process killed here (tests/test_lexical.py
    kills one) leaves tantivy ahead of its recorded version, which the next sync replays."""
    db.record_lexical_changes(conn, added, removed)


def _delete(writer: tantivy.IndexWriter, ids: list[int]) -> None:
    for start in range(0, len(ids), 1000):
        writer.delete_documents_by_query(tantivy.Query.term_set_query(SCHEMA_TANTIVY, "pid", ids[start : start + 1000]))


def term_weights(tokens: Sequence[str], df: dict[str, int], passages: int) -> dict[str, float]:
    """idf per distinct query token with a document frequency, times its repeats (bm25s sums
    over the query's tokens); ``passages``: N.  Shared by both backends (rag/store/milvus_lexical.py)."""
    weights: dict[str, float] = {}
    for t in tokens:
        if df.get(t, 0):
            n = max(passages, df[t])
            weights[t] = weights.get(t, 0.0) + math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
    return weights


def score_tokens(words: Sequence[str], weights: dict[str, float], avgdl: float) -> float:
    """The BM25 score of a passage whose tokens are ``words`` (float64; callers round to float32)."""
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(words) / avgdl) if avgdl else BM25_K1
    total = 0.0
    for term, weight in weights.items():
        tf = words.count(term)
        if tf:
            total += weight * tf / (tf + norm)
    return total


class Ranker:
    """BM25 over one tantivy searcher (a fixed commit) and the statistics read with it."""

    def __init__(self, searcher: tantivy.Searcher, passages: int, tokens: int):
        self.searcher = searcher
        self.n = passages
        self.avgdl = tokens / passages if passages else 0.0

    @classmethod
    def open(cls, index: tantivy.Index, passages: int, tokens: int) -> Ranker:
        for attempt in range(OPEN_ATTEMPTS):
            try:
                return _unpanicked(lambda: cls(_reloaded(index).searcher(), passages, tokens), "the lexical index")
            except ValueError:
                # A writer in another process merged and removed segment files between reading
                # the commit and opening them: the next reload reads the newer commit.
                if attempt == OPEN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _weights(self, tokens: Sequence[str]) -> dict[str, float]:
        df = {t: int(self.searcher.doc_freq("tokens", t)) for t in dict.fromkeys(tokens)}
        return term_weights(tokens, df, self.n)

    def _score(self, addresses: list, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, float32 scores) of these documents, from their stored tokens."""
        ids = np.asarray(self.searcher.fast_field_values("pid", addresses), dtype=np.int64)
        scores = np.zeros(len(addresses), dtype=np.float64)
        for i, address in enumerate(addresses):
            scores[i] = score_tokens(self.searcher.doc(address)["tokens"][0].split(), weights, self.avgdl)
        return ids, scores.astype(np.float32)  # float32 like bm25s' score arrays: same ties

    def top(self, tokens: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, scores) of the ``k`` best passages with a positive score, best first (ties by id)."""
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        weights = self._weights(tokens) if k > 0 else {}
        if not weights:
            return empty
        repeats = {t: tokens.count(t) for t in weights}
        clauses = [(tantivy.Occur.Should, _term(t) if repeats[t] == 1 else tantivy.Query.boost_query(_term(t), float(repeats[t])))
                   for t in weights]
        hits = self.searcher.search(tantivy.Query.boolean_query(clauses), RESCORE_FACTOR * k, count=False).hits
        if not hits:
            return empty
        ids, scores = self._score([address for _, address in hits], weights)
        positive = np.flatnonzero(scores > 0)
        order = positive[np.lexsort((ids[positive], -scores[positive]))][:k]
        return ids[order], scores[order]

    def scores_of(self, tokens: Sequence[str], ids: Iterable[int]) -> dict[int, float]:
        """BM25 scores of the given passages (absent: no query term in it, score 0)."""
        ids = [int(i) for i in ids]
        weights = self._weights(tokens) if ids else {}
        if not weights:
            return {}
        query = tantivy.Query.term_set_query(SCHEMA_TANTIVY, "pid", ids)
        hits = self.searcher.search(query, len(ids), count=False).hits
        found, scores = self._score([address for _, address in hits], weights)
        return {int(pid): float(score) for pid, score in zip(found.tolist(), scores.tolist(), strict=True) if score > 0}


def _reloaded(index: tantivy.Index) -> tantivy.Index:
    index.reload()
    return index


def _term(token: str) -> tantivy.Query:
    return tantivy.Query.term_query(SCHEMA_TANTIVY, "tokens", token, index_option="freq")
