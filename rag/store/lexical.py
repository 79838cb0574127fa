"""BM25 over passages with SQLite FTS5, fed the tokens of bm25s' tokenizer (Snowball stemmer).

Why FTS5 and not bm25s any more: bm25s precomputes every (term, passage) score from corpus-wide
statistics, so one added document changes the IDF of every score and the whole matrix was
rebuilt on each write (6 s at 2*10^4 passages, 19 s at 10^5, issue 13).  FTS5 keeps an inverted
index inside the same SQLite transaction as the passages (so the text index and the passages can
never disagree after a crash), adds and deletes a passage in time proportional to its words, and
computes BM25 at query time from the current statistics (N, avgdl, df), as Lucene does.

Tokenisation is unchanged: bm25s' tokenizer with English stopwords and the Snowball stemmer
turns text into space-separated stems, which FTS5's ``unicode61`` tokenizer then splits again
without changing them.  FTS5's bm25() fixes k1=1.2 and b=0.75 (bm25s ran Lucene's variant with
k1=1.5) and its IDF is log((N-n+0.5)/(n+0.5)) floored at 1e-6 where Lucene adds 1 inside the
log; measured on BEIR SciFact (eval/lexical_fts5.py): nDCG@10 0.689 with bm25s, see
eval/RESULTS.md for FTS5's figure.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence

import bm25s
import numpy as np
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)

STEMMER_LANGUAGE = "english"
TABLE = "lexical"
# Stems are \w\w+ runs (bm25s' token pattern); unicode61 must keep "_" inside a token too.
CREATE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(tokens, tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")"
DESCRIPTION = {"engine": "sqlite-fts5", "ranking": "bm25 (k1=1.2, b=0.75)", "stemmer": STEMMER_LANGUAGE, "stopwords": "en",
               "tokenizer": f"bm25s {bm25s.__version__}"}


class Tokenizer:
    """The bm25s tokenizer with our stemmer; one per thread (PyStemmer objects are not shared)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer(STEMMER_LANGUAGE)

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        if not texts:
            return []
        return bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)


def match_expression(tokens: Iterable[str]) -> str:
    """An FTS5 query that ORs the tokens; quoted, so no stem can be read as FTS5 syntax."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def add(conn: sqlite3.Connection, ids: Sequence[int], texts: Sequence[str], tokenizer: Tokenizer) -> None:
    conn.executemany(f"INSERT INTO {TABLE}(rowid, tokens) VALUES (?, ?)",
                     ((int(i), " ".join(tokens)) for i, tokens in zip(ids, tokenizer(texts), strict=True)))


def delete(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    conn.executemany(f"DELETE FROM {TABLE} WHERE rowid = ?", ((int(i),) for i in ids))


def top(conn: sqlite3.Connection, tokens: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(passage ids, BM25 scores) of the ``k`` best matches, best first (ties by id)."""
    if not tokens or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    # FTS5's bm25() is negative (smaller is better); ORDER BY rank uses it directly.
    rows = conn.execute(f"SELECT rowid, -bm25({TABLE}) FROM {TABLE} WHERE {TABLE} MATCH ? ORDER BY rank, rowid LIMIT ?",
                        (match_expression(tokens), k)).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float32)


def scores_of(conn: sqlite3.Connection, tokens: Sequence[str], ids: Sequence[int]) -> dict[int, float]:
    """BM25 scores of the given passages (absent: no query term in it, score 0)."""
    if not tokens or not len(ids):
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT rowid, -bm25({TABLE}) FROM {TABLE} WHERE {TABLE} MATCH ? AND rowid IN ({marks})",
                        (match_expression(tokens), *map(int, ids))).fetchall()
    return {int(r[0]): float(r[1]) for r in rows}
