"""Benchmark data: SQuAD paragraphs as documents, and synthetic corpora of realistic vectors.

Nothing is copied into the repository: SQuAD is read from the path given, and vectors are
cached in the benchmark's cache folder (``--cache``, default ``~/.cache/rag-bench``).

Synthetic vectors.  Uniform random unit vectors in 384 dimensions are a poor stand-in for
sentence embeddings (every point is nearly equidistant from every other, so approximate indexes
look far worse than on real data), and copies of a few thousand real vectors are far too easy.
We sample from a kernel density estimate of the real passage embeddings instead: pick a real
SQuAD paragraph vector, add Gaussian noise shaped like the embedding cloud itself (its principal
axes and variances, scaled by ``bandwidth``), and renormalise.  Queries are real SQuAD question
embeddings, so the query distribution differs from the passage distribution as it does in use.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.ingest import document_from_text, slugify
from rag.types import Document

# Noise scale relative to the spread of the real embeddings: 0.5 puts a synthetic vector at
# cosine ~0.75 from the paragraph it was drawn around (real paragraphs of one SQuAD article
# are at ~0.4-0.7 from each other), so neighbourhoods overlap as they do in real corpora.
DEFAULT_BANDWIDTH = 0.5


@dataclass
class SquadSample:
    titles: list[str]  # per paragraph
    paragraphs: list[str]
    questions: list[str]
    answers: list[list[str]]  # per question
    question_paragraph: list[int]  # index of the question's own paragraph


def load_squad(path: Path) -> SquadSample:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    sample = SquadSample([], [], [], [], [])
    for article in data["data"]:
        title = str(article.get("title", "")).replace("_", " ")
        for paragraph in article["paragraphs"]:
            sample.titles.append(title)
            sample.paragraphs.append(paragraph["context"])
            for qa in paragraph["qas"]:
                sample.questions.append(qa["question"])
                sample.answers.append([a["text"] for a in qa.get("answers", [])])
                sample.question_paragraph.append(len(sample.paragraphs) - 1)
    return sample


def squad_documents(sample: SquadSample, limit: int | None = None) -> list[Document]:
    """One document per paragraph (a SQuAD paragraph is the passage unit of open retrieval)."""
    docs = []
    for i, (title, text) in enumerate(zip(sample.titles, sample.paragraphs, strict=True)):
        if limit is not None and i >= limit:
            break
        docs.append(document_from_text(text, f"{slugify(title)}-p{i}", {"title": title}))
    return docs


def cached_vectors(cache: Path, encoder, texts: Sequence[str], tag: str, batch_size: int = 64) -> np.ndarray:
    """Encode ``texts`` once per (encoder, texts) and keep the result in ``cache``."""
    digest = hashlib.sha256(("\n".join(texts) + "\0" + encoder.name).encode()).hexdigest()[:16]
    path = Path(cache) / f"{tag}-{slugify(encoder.name)}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    vectors = encoder.encode(list(texts), batch_size=batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


class SyntheticCorpus:
    """Draws unit vectors around real ones (see the module docstring); deterministic per seed."""

    def __init__(self, real: np.ndarray, bandwidth: float = DEFAULT_BANDWIDTH, seed: int = 0):
        self.real = np.asarray(real, dtype=np.float32)
        centered = self.real - self.real.mean(axis=0)
        # Principal axes and standard deviations of the real cloud.
        _, s, vt = np.linalg.svd(centered, full_matrices=False)
        self._axes = (vt * (s[:, None] / np.sqrt(max(len(self.real) - 1, 1)))).astype(np.float32)
        self.bandwidth = bandwidth
        self.seed = seed

    def vectors(self, n: int, chunk: int = 65536, cycled: bool = False) -> np.ndarray:
        """``n`` unit vectors; the real ones come first, then synthetic ones.  ``cycled``: vector i
        is drawn around real vector i mod len(real), so it belongs to the SQuAD paragraph whose
        text passage i carries when texts are cycled too (the 10^6 service benchmark, where the
        answers of hybrid search are checked); otherwise around a random real vector."""
        out = np.empty((n, self.real.shape[1]), dtype=np.float32)
        first = min(n, len(self.real))
        out[:first] = self.real[:first]
        rng = np.random.default_rng(self.seed)
        for start in range(first, n, chunk):
            stop = min(n, start + chunk)
            picks = np.arange(start, stop) % len(self.real) if cycled else rng.integers(0, len(self.real), stop - start)
            base = self.real[picks]
            noise = rng.standard_normal((stop - start, self._axes.shape[0]), dtype=np.float32) @ self._axes
            block = base + self.bandwidth * noise
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start:stop] = block
        return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 262144) -> np.ndarray:
    """Ids of the exact top ``k`` by inner product (the ground truth for recall)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        scores = queries @ vectors[start : start + chunk].T
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        merged_ids = np.concatenate([best_ids, part + start], axis=1)
        order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best_ids = np.take_along_axis(merged_ids, order, axis=1)
    return best_ids


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean share of the exact top ``k`` that the approximate top ``k`` found."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


def squad_with_synthetic(squad: Path, model: str, cache: Path) -> tuple[SquadSample, SyntheticCorpus]:
    """The SQuAD sample and synthetic vectors drawn around its paragraphs' real embeddings
    (encoded once, cached): the corpus of the writes, service and Milvus writes sections."""
    from rag.embedding import load_encoder
    from rag.settings import Settings

    sample = load_squad(squad)
    real = cached_vectors(cache, load_encoder(Settings(embedding_model=model, encoder_runtime="torch")), sample.paragraphs, "squad-paragraphs")
    return sample, SyntheticCorpus(real, DEFAULT_BANDWIDTH)
