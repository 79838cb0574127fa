"""SQuAD's official answer normalisation, EM and F1 (the v1.1/v2.0 evaluation script's definitions).

A neutral module: reading (answer de-duplication), training and evaluation all use it, and none
of them imports another through it.

An empty gold list means "unanswerable": predicting "" (abstaining) scores 1, anything else 0.
"""
from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        # v2.0 script: if either is empty, F1 is 1 when both are, else 0.
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of ``prediction`` against the best-matching gold answer, each 0..1.

    ``golds == []`` is an unanswerable question: abstaining (``prediction == ""``) is right.
    """
    if not golds:
        score = float(prediction == "")
        return score, score
    return (
        max(exact_match(prediction, g) for g in golds),
        max(f1(prediction, g) for g in golds),
    )
