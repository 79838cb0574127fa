"""BM25 over passages with bm25s (Lucene variant) and the Snowball English stemmer."""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

# bm25s logs every index build at DEBUG through its own handler; keep it quiet.
logging.getLogger("bm25s").setLevel(logging.WARNING)

PARAMS_FILE = "rag_bm25.json"
# Lucene's defaults; k1=1.2-1.5 and b=0.75 are the values BEIR's BM25 baselines use.
BM25_K1 = 1.5
BM25_B = 0.75
STEMMER_LANGUAGE = "english"


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25 | None = None, size: int = 0):
        self._retriever = retriever
        self._size = size
        self._stemmer = Stemmer.Stemmer(STEMMER_LANGUAGE)

    def _tokenize(self, texts: Sequence[str], return_ids: bool):
        return bm25s.tokenize(
            list(texts), stopwords="en", stemmer=self._stemmer, return_ids=return_ids, show_progress=False
        )

    def build(self, texts: Sequence[str]) -> None:
        self._size = len(texts)
        tokenized = self._tokenize(texts, return_ids=True) if texts else None
        if tokenized is None or not tokenized.vocab:
            # No passage has a single indexable word ("A. B. C. 1 2 3": one-letter tokens,
            # numbers and stopwords are dropped): bm25s cannot index an empty vocabulary (it
            # raised ValueError, a 500 on upload and delete, issue 11).  Every BM25 score is 0.
            self._retriever = None
            return
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
        retriever.index(tokenized, show_progress=False)
        self._retriever = retriever

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for ``query`` (zeros when no query term is indexed)."""
        tokens = self._tokenize([query], return_ids=False)[0]
        if self._retriever is None or not tokens:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(str(folder), show_progress=False)
        params = {"size": self._size, "indexed": self._retriever is not None, "k1": BM25_K1, "b": BM25_B, "method": "lucene",
                  "stemmer": STEMMER_LANGUAGE, "stopwords": "en", "bm25s_version": bm25s.__version__}
        (folder / PARAMS_FILE).write_text(json.dumps(params, indent=2))

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> LexicalIndex:
        params = json.loads((folder / PARAMS_FILE).read_text())
        retriever = None
        # Indexes saved before "indexed" existed always had a retriever when size > 0.
        if params["size"] and params.get("indexed", True):
            retriever = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
        return cls(retriever, params["size"])

    def __len__(self) -> int:
        return self._size
