"""BM25 on the Milvus index, scored as the embedded index scores it (issue 22, requirement 9).

Milvus' BM25 function keeps its statistics (N, mean length, document frequencies) per segment:
on Milvus Lite a one-passage upload sits alone in a new segment, where each of its terms has
df = N = 1.  Measured, default corpus plus "The probe facility was opened in 1987 by Ada
Example." uploaded after a flush: "Ada Example" ranked two old passages at 2.68 and 2.51 above
the new one at 0.70; the embedded index ranks the new one first (3.83, the old ones 0.93).  The
scale differed too (Milvus multiplies by k1 + 1), so hybrid fusion differed by backend.

So Milvus only proposes candidates, as tantivy does for the embedded index, and every score is
computed here with rag/store/lexical.py's formula from whole-index statistics:

* N and the total token count: the manifest (``live_passages``, ``lexical_tokens``), kept by
  the writers like the other live counts;
* df per term: one row per term in the records collection (key ``d|<term>``, the count in
  ``passages``), kept by the writers: +1 per stored passage holding the term, -1 per removed one;
* a passage's tokens: its ``lexical`` field (the embedded path's tokens, space-joined).

A query reads its terms' df rows by key (one read) and the candidates' tokens with the search.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from rag.store.lexical import RESCORE_FACTOR, score_tokens, term_weights, tokenize_query
from rag.store.milvus_store import MAX_TOP_K, keys_filter

TERM = "df"  # kind of a records row that holds one term's document frequency
# Candidates re-scored per result: deeper than the embedded index's (tantivy ranks with global
# statistics, Milvus per segment, so its order is further from the final one).
MILVUS_RESCORE_FACTOR = 2 * RESCORE_FACTOR
KEYS_PER_READ = 500


def term_key(term: str) -> str:
    return f"d|{term}"


def term_row(term: str, count: int) -> dict[str, Any]:
    """A records row holding a term's document frequency (the other fields empty)."""
    return {"key": term_key(term), "kind": TERM, "document_id": "", "gen": "", "grp": "", "part": 0, "parts": 1, "data": "",
            "origin": "", "content_hash": "", "source_path": "", "passages": int(count), "characters": 0, "members": "",
            "size": [0.0, 0.0]}


def document_frequencies(client, records: str, terms: Iterable[str]) -> dict[str, int]:
    keys = sorted({term_key(t) for t in terms})
    rows = [row for start in range(0, len(keys), KEYS_PER_READ)
            for row in client.query(records, filter=keys_filter(keys[start : start + KEYS_PER_READ]), output_fields=["key", "passages"])]
    return {row["key"][2:]: int(row["passages"]) for row in rows}


class TermCounts:
    """What one write changes in the BM25 statistics: df per term, passages and tokens."""

    def __init__(self) -> None:
        self.df: Counter[str] = Counter()
        self.tokens = 0

    def add(self, lexical: str, sign: int = 1) -> None:
        """A passage with these (space-joined) tokens was stored (``sign`` 1) or removed (-1)."""
        words = lexical.split()
        self.tokens += sign * len(words)
        self.df.update({term: sign for term in set(words)})

    def save(self, client, records: str, batch: int) -> None:
        """Apply the df changes to the records collection (rows at 0 are deleted)."""
        changed = {t: d for t, d in self.df.items() if d}
        if not changed:
            return
        current = document_frequencies(client, records, changed)
        rows, gone = [], []
        for term, delta in changed.items():
            count = current.get(term, 0) + delta
            if count > 0:
                rows.append(term_row(term, count))
            elif term in current:
                gone.append(term_key(term))
        for start in range(0, len(rows), batch):
            client.upsert(records, rows[start : start + batch])
        for start in range(0, len(gone), KEYS_PER_READ):
            client.delete(records, filter=keys_filter(gone[start : start + KEYS_PER_READ]))


class LexicalView:
    """BM25 over one Milvus index: candidates from Milvus, scores from whole-index statistics."""

    def __init__(self, client, name: str, records: str, passages: int, tokens: int):
        self.client, self.name, self.records = client, name, records
        self.n = passages
        self.avgdl = tokens / passages if passages else 0.0

    def _weights(self, terms: list[str]) -> dict[str, float]:
        return term_weights(terms, document_frequencies(self.client, self.records, terms), self.n) if terms else {}

    def _scored(self, rows: list[dict[str, Any]], weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([int(r["id"]) for r in rows], dtype=np.int64)
        scores = np.array([score_tokens(r["lexical"].split(), weights, self.avgdl) for r in rows], dtype=np.float64)
        return ids, scores.astype(np.float32)  # float32 as the embedded index's: same ties

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, BM25 scores) of the ``k`` best passages with a positive score, best first (ties by id)."""
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        terms = tokenize_query(query)
        weights = self._weights(terms) if k > 0 and self.n else {}
        if not weights:
            return empty
        # The terms some passage holds, repeats kept (a repeated query term weighs more).
        text = " ".join(t for t in terms if t in weights)
        hits = self.client.search(self.name, data=[text], anns_field="sparse", limit=min(MILVUS_RESCORE_FACTOR * k, MAX_TOP_K),
                                  output_fields=["id", "lexical"], search_params={"metric_type": "BM25"})[0]
        if not hits:
            return empty
        ids, scores = self._scored([{"id": h["id"], "lexical": h["entity"]["lexical"]} for h in hits], weights)
        positive = np.flatnonzero(scores > 0)
        order = positive[np.lexsort((ids[positive], -scores[positive]))][:k]
        return ids[order], scores[order]

    def scores_of(self, query: str, ids: Iterable[int]) -> dict[int, float]:
        """BM25 scores of the given passages (absent: no query term in it, score 0)."""
        ids = [int(i) for i in ids]
        weights = self._weights(tokenize_query(query)) if ids else {}
        if not weights:
            return {}
        rows = [row for start in range(0, len(ids), KEYS_PER_READ)
                for row in self.client.get(self.name, ids=ids[start : start + KEYS_PER_READ], output_fields=["id", "lexical"])]
        found, scores = self._scored(rows, weights)
        return {int(pid): float(score) for pid, score in zip(found.tolist(), scores.tolist(), strict=True) if score > 0}
