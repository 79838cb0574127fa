"""BM25 over passages: SQLite FTS5 finds the passages, Python scores them with bm25s' formula.

Why FTS5 and not bm25s any more: bm25s precomputes every (term, passage) score from corpus-wide
statistics, so one added document changes the IDF of every score and the whole matrix was
rebuilt on each write (6 s at 2*10^4 passages, 19 s at 10^5, issue 13).  FTS5 keeps an inverted
index inside the same SQLite transaction as the passages (so the text index and the passages can
never disagree after a crash) and adds and deletes a passage in time proportional to its words.

Why not FTS5's own bm25(): its IDF is log((N - n + 0.5)/(n + 0.5)), floored at ~0, so a term in
more than half of the passages counts for nothing ("nato" and "korea" on the 28-passage default
corpus: seed gold recall@5 0.9726 instead of 1.0), and it fixes k1=1.2.  The scores here are
exactly bm25s' ``method="lucene"`` with k1=1.5, b=0.75 (what the embedded index used before):

    idf(t)      = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))          (always > 0)
    score(q, d) = sum over query tokens t (repeats count) of idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))

with N the number of passages, avgdl their mean token count (both kept in ``lexical_stats`` in
the same transaction as the rows), df from FTS5's own vocabulary (``lexical_vocab``, fts5vocab
'row') and tf and |d| from the passage's stored tokens.  Tests compare the scores with bm25s.

Per query the work follows the query terms' postings, never the corpus: FTS5 lists each term's
passages with their frequencies (fts5vocab 'instance', read per term), and only those passages
are scored.  A term held by more than ``CANDIDATES_PER_TERM`` (1000) passages is "common": its
postings are read only to score passages already found, and it brings new candidates only when
it can still change the top k (MaxScore: a passage holding no rarer term scores below the sum of
the IDFs of the common terms it holds, so the lightest common terms whose IDFs add up to less
than the k-th score already found are skipped), and then only its 1000 best passages for that
term alone (FTS5's rank: same tf saturation and length normalisation).  Why 1000: a term in
1000 of 10^5 passages has IDF log(1 + 99000.5/1000.5) = 4.6, against 9.2 at df=10 and 11.5 at
df=1, so a passage reached only through it, outside its best 1000, is far from a top 50.
Measured by timing ``top`` directly on 2 shared cores (SciFact nDCG in eval/RESULTS.md): on BEIR
SciFact (5183 passages) the top 50 of all 300 queries is identical with and without the cap
(cap 300: 294/300; cap 100: the top 10 differs in 6); SciFact copied 20 times (103,660
passages, "cell" in 50,600): p50 / p95 per query 57 / 166 ms with the cap, 126 / 302 ms without.

Tokenisation is unchanged: bm25s' tokenizer with English stopwords and the Snowball stemmer
turns text into space-separated stems, which FTS5's ``unicode61`` tokenizer then splits again
without changing them (stems are \\w runs: letters, digits and "_", all token characters).
"""
from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Sequence

import bm25s
import numpy as np
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)

STEMMER_LANGUAGE = "english"
# Lucene's defaults, as bm25s ran them (rag/store/lexical.py before format 3).
BM25_K1 = 1.5
BM25_B = 0.75
# New candidates a term may bring (see the module docstring for why 1000).
CANDIDATES_PER_TERM = 1000
TABLE = "lexical"
VOCAB = "lexical_vocab"        # fts5vocab 'row': (term, passages holding it)
INSTANCES = "lexical_instance"  # fts5vocab 'instance': one row per occurrence, read per term
LENGTHS = "lexical_lengths"    # tokens per passage (|d|)
STATS = "lexical_stats"        # one row: passages and tokens in all (N and N * avgdl)
# Stems are \w\w+ runs (bm25s' token pattern); unicode61 must keep "_" inside a token too.
CREATE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(tokens, tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")"
SCHEMA = [
    CREATE_SQL,
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCAB} USING fts5vocab({TABLE}, 'row')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {INSTANCES} USING fts5vocab({TABLE}, 'instance')",
    f"CREATE TABLE IF NOT EXISTS {LENGTHS}(passage_id INTEGER PRIMARY KEY, tokens INTEGER NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {STATS}(id INTEGER PRIMARY KEY CHECK (id = 0), passages INTEGER NOT NULL, tokens INTEGER NOT NULL)",
]
DESCRIPTION = {"engine": "sqlite-fts5 postings, bm25s lucene scoring", "ranking": f"bm25 lucene (k1={BM25_K1}, b={BM25_B})",
               "stemmer": STEMMER_LANGUAGE, "stopwords": "en", "tokenizer": f"bm25s {bm25s.__version__}",
               "candidates_per_term": CANDIDATES_PER_TERM}


class Tokenizer:
    """The bm25s tokenizer with our stemmer; one per thread (PyStemmer objects are not shared)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer(STEMMER_LANGUAGE)

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        if not texts:
            return []
        return bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)


def _quoted(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def match_expression(tokens: Iterable[str]) -> str:
    """An FTS5 query that ORs the tokens; quoted, so no stem can be read as FTS5 syntax."""
    return " OR ".join(_quoted(t) for t in tokens)


def _bump(conn: sqlite3.Connection, passages: int, tokens: int) -> None:
    conn.execute(f"INSERT INTO {STATS}(id, passages, tokens) VALUES (0, ?, ?) ON CONFLICT(id) DO UPDATE"
                 " SET passages = passages + excluded.passages, tokens = tokens + excluded.tokens", (passages, tokens))


def add(conn: sqlite3.Connection, ids: Sequence[int], texts: Sequence[str], tokenizer: Tokenizer) -> None:
    rows = [(int(i), " ".join(tokens), len(tokens)) for i, tokens in zip(ids, tokenizer(texts), strict=True)]
    conn.executemany(f"INSERT INTO {TABLE}(rowid, tokens) VALUES (?, ?)", (r[:2] for r in rows))
    conn.executemany(f"INSERT INTO {LENGTHS}(passage_id, tokens) VALUES (?, ?)", (r[::2] for r in rows))
    _bump(conn, len(rows), sum(r[2] for r in rows))


def delete(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    removed = tokens = 0
    for pid in ids:
        row = conn.execute(f"SELECT tokens FROM {TABLE} WHERE rowid = ?", (int(pid),)).fetchone()
        if row is None:
            continue
        conn.execute(f"DELETE FROM {TABLE} WHERE rowid = ?", (int(pid),))
        conn.execute(f"DELETE FROM {LENGTHS} WHERE passage_id = ?", (int(pid),))
        removed, tokens = removed + 1, tokens + len(row[0].split())
    if removed:
        _bump(conn, -removed, -tokens)


def clear(conn: sqlite3.Connection) -> None:
    for table in (TABLE, LENGTHS, STATS):
        conn.execute(f"DELETE FROM {table}")


def backfill(conn: sqlite3.Connection) -> None:
    """Store the lengths and statistics of an index written before they were kept (format 3
    during development); inside a write transaction, once."""
    if conn.execute(f"SELECT 1 FROM {STATS} WHERE id = 0").fetchone() is not None:
        return
    rows = [(pid, len(text.split())) for pid, text in conn.execute(f"SELECT rowid, tokens FROM {TABLE}")]
    conn.execute(f"DELETE FROM {LENGTHS}")
    conn.executemany(f"INSERT INTO {LENGTHS}(passage_id, tokens) VALUES (?, ?)", rows)
    _bump(conn, len(rows), sum(n for _, n in rows))


def stats(conn: sqlite3.Connection) -> tuple[int, int]:
    """(passages, tokens) in the lexical index."""
    row = conn.execute(f"SELECT passages, tokens FROM {STATS} WHERE id = 0").fetchone()
    if row is not None:
        return int(row[0]), int(row[1])
    # Not backfilled yet (see ``backfill``): count, once per query, until the next write.
    texts = [r[0] for r in conn.execute(f"SELECT tokens FROM {TABLE}")]
    return len(texts), sum(len(t.split()) for t in texts)


def _document_frequencies(conn: sqlite3.Connection, terms: Iterable[str]) -> dict[str, int]:
    found = {}
    for term in terms:
        row = conn.execute(f"SELECT doc FROM {VOCAB} WHERE term = ?", (term,)).fetchone()
        if row and row[0]:
            found[term] = int(row[0])
    return found


def _lengths(conn: sqlite3.Connection, ids: list[int]) -> dict[int, int]:
    found = dict(conn.execute(f"SELECT passage_id, tokens FROM {LENGTHS} WHERE passage_id IN (SELECT value FROM json_each(?))",
                              (json.dumps(ids),)).fetchall())
    if len(found) < len(ids):  # not backfilled yet: count the stored tokens
        missing = [i for i in ids if i not in found]
        found.update((pid, len(text.split())) for pid, text in conn.execute(
            f"SELECT rowid, tokens FROM {TABLE} WHERE rowid IN (SELECT value FROM json_each(?))", (json.dumps(missing),)))
    return found


def _term_frequencies(conn: sqlite3.Connection, term: str, within: list[int] | None = None) -> dict[int, int]:
    """{passage id: occurrences of ``term``}: the term's postings, or only those in ``within``."""
    if within is None:
        rows = conn.execute(f"SELECT doc, count(*) FROM {INSTANCES} WHERE term = ? GROUP BY doc", (term,))
    else:
        rows = conn.execute(f"SELECT doc, count(*) FROM {INSTANCES} WHERE term = ? AND doc IN (SELECT value FROM json_each(?))"
                            " GROUP BY doc", (term, json.dumps(within)))
    return dict(rows.fetchall())


class _Query:
    """bm25s' lucene BM25 of one query over the index's current statistics."""

    def __init__(self, conn: sqlite3.Connection, tokens: Sequence[str]):
        self.conn = conn
        n, total = stats(conn)
        self.avgdl = total / n if n else 0.0
        df = _document_frequencies(conn, dict.fromkeys(tokens))
        self.df = df
        # A repeated query token counts once per repeat (bm25s sums over the query's tokens).
        self.weights: dict[str, float] = {}
        for t in tokens:
            if t in df:
                idf = math.log(1 + (max(n, df[t]) - df[t] + 0.5) / (df[t] + 0.5))
                self.weights[t] = self.weights.get(t, 0.0) + idf

    def rare_candidates(self, cap: int) -> tuple[list[int], dict[str, dict[int, int]]]:
        """Every passage holding a term in at most ``cap`` passages, and those terms' frequencies."""
        found: set[int] = set()
        frequencies: dict[str, dict[int, int]] = {}
        for term in self.weights:
            if self.df[term] <= cap:
                frequencies[term] = _term_frequencies(self.conn, term)
                found.update(frequencies[term])
        return sorted(found), frequencies

    def common_candidates(self, terms: Iterable[str], cap: int) -> set[int]:
        """The ``cap`` best passages for each of ``terms`` (FTS5's rank for that term alone: the
        same tf saturation and length normalisation; it costs a pass over the term's postings)."""
        found: set[int] = set()
        for term in terms:
            rows = self.conn.execute(f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ? ORDER BY rank LIMIT ?", (_quoted(term), cap))
            found.update(r[0] for r in rows)
        return found

    def essential_common_terms(self, cap: int, kth: float) -> list[str]:
        """The terms held by more than ``cap`` passages that could still change the top k (MaxScore):
        a passage holding none of the rarer terms scores below the sum of the weights of the
        common terms it holds (tf / (tf + norm) < 1), so the lightest common terms whose weights
        add up to less than the k-th score found so far need not bring candidates."""
        common = sorted((w, t) for t, w in self.weights.items() if self.df[t] > cap)
        light = 0.0
        for n, (weight, _) in enumerate(common):
            if light + weight >= kth:
                return [t for _, t in common[n:]]
            light += weight
        return []

    def scores(self, ids: list[int], frequencies: dict[str, dict[int, int]] | None = None) -> np.ndarray:
        """float32 scores of ``ids`` (float32 like bm25s' score arrays, so ties and order match)."""
        if not ids:
            return np.zeros(0, dtype=np.float32)
        frequencies = dict(frequencies or {})
        lengths = _lengths(self.conn, ids)
        dl = np.array([lengths.get(i, 0) for i in ids], dtype=np.float64)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * dl / self.avgdl) if self.avgdl else np.full(len(ids), BM25_K1)
        total = np.zeros(len(ids), dtype=np.float64)
        for term, weight in self.weights.items():
            if term not in frequencies:
                frequencies[term] = _term_frequencies(self.conn, term, ids)
            got = frequencies[term]
            tf = np.array([got.get(i, 0) for i in ids], dtype=np.float64)
            total += weight * tf / (tf + norm)
        return total.astype(np.float32)


def top(conn: sqlite3.Connection, tokens: Sequence[str], k: int, cap: int = CANDIDATES_PER_TERM) -> tuple[np.ndarray, np.ndarray]:
    """(passage ids, BM25 scores) of the ``k`` best passages with a positive score, best first (ties by id)."""
    empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if not tokens or k <= 0:
        return empty
    query = _Query(conn, tokens)
    if not query.weights:
        return empty
    candidates, frequencies = query.rare_candidates(cap)
    scores = query.scores(candidates, frequencies)
    kth = float(np.partition(scores, len(scores) - k)[len(scores) - k]) if len(scores) >= k else 0.0
    essential = query.essential_common_terms(cap, kth)
    if essential:
        candidates = sorted(set(candidates) | query.common_candidates(essential, cap))
        scores = query.scores(candidates, frequencies)
    if not candidates:
        return empty
    ids = np.array(candidates, dtype=np.int64)
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        positive = positive[np.argpartition(-scores[positive], k - 1)[:k]]
    order = positive[np.lexsort((ids[positive], -scores[positive]))]
    return ids[order], scores[order]


def scores_of(conn: sqlite3.Connection, tokens: Sequence[str], ids: Sequence[int]) -> dict[int, float]:
    """BM25 scores of the given passages (absent: no query term in it, score 0)."""
    if not tokens or not len(ids):
        return {}
    query = _Query(conn, tokens)
    if not query.weights:
        return {}
    ids = [int(i) for i in ids]
    return {pid: float(score) for pid, score in zip(ids, query.scores(ids).tolist(), strict=True) if score > 0}
