"""From ranked candidate spans to the answers a person sees: support, distinctness, well-formedness.

``select_answers`` turns one question's calibrated candidates (best first, over all its passages)
into at most ``top_n`` ``AnswerSpan``s:

* the same answer text (SQuAD-normalised) found in several passages is one answer: its best
  span is quoted and the others become ``supporting`` spans (each one a citation); its score is
  aggregated over the distinct passages (``aggregate``);
* an alternative is kept only if it is distinct from every answer already kept (no shared
  characters in one paragraph, neither text contains the other), well-formed (``well_formed``:
  not cut inside a word, a name or a list) and scores at least ``ALTERNATIVE_RATIO`` times the
  best answer.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.text_metrics import normalize_answer
from rag.types import AnswerSpan

# An alternative is shown only when its score is at least this share of the best answer's (and
# above the threshold).  Chosen on held-out training data read as the service reads it (800
# answerable + 800 rule-edited unanswerable questions over their BM25 top-3 paragraphs; not SQuAD
# dev): the ratio maximising the F1 of "shown" against "correct" (token F1 >= 0.5).  At 0.75,
# 105 alternatives shown, 25 correct (17 where the best answer was wrong); at 0.5: 138 shown, 28
# correct; at 0.9: 55 shown, 13 correct (eval/reader/alternatives.py, alternatives.json).
ALTERNATIVE_RATIO = 0.75

# How several passages quoting the same answer combine: "max" keeps the best span's calibrated
# probability; "noisy_or" = 1 - prod(1 - p_i) over distinct passages.  Same held-out data: a tie
# (56 of 1,600 top answers have support; SQuAD 2.0 F1 at the best threshold 65.47 noisy-or vs
# 65.43 max; calibration error 0.091 vs 0.090), so the answer that several passages state wins.
AGGREGATION = "noisy_or"

# Words that never end a complete answer ("Russia and North Korea on the one hand and" is cut
# inside a list) nor start one ("and China").
_DANGLING_END = frozenset(
    "a an the of in on at to for by with from and or nor but as than that which who whose whom "
    "its their his her our your this these those".split()
)
_DANGLING_START = frozenset("and or nor but of than".split())
_WORD = re.compile(r"\w+")
_PAIRS = (("(", ")"), ("[", "]"), ("“", "”"))


def well_formed(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` is a complete phrase: not cut inside a word, a name, a list or brackets."""
    span = text[start:end]
    if not span.strip():
        return False
    if start > 0 and text[start - 1].isalnum() and span[0].isalnum():
        return False  # starts mid-word
    if end < len(text) and text[end].isalnum() and span[-1].isalnum():
        return False  # ends mid-word
    words = _WORD.findall(span.lower())
    if not words or words[-1] in _DANGLING_END or words[0] in _DANGLING_START:
        return False
    if any(span.count(a) != span.count(b) for a, b in _PAIRS) or span.count('"') % 2:
        return False
    after = text[end:end + 40]
    # The phrase goes on: "Lord Hastings Lionel" + " Ismay", "Russia and North Korea ... China" + " and Iran".
    if re.match(r"\s+[A-Z][a-z]", after) and span.split()[-1][:1].isupper() and not re.match(r"\s*[.;:!?]", after):
        return False
    if re.match(r"(,\s|,?\s+(and|or)\s)", after) and re.search(r",\s|\s(and|or)\s", span):
        return False  # a list whose last item is not the list's last item
    before = text[max(0, start - 30):start]
    if re.search(r"[A-Z][a-z]+\s+$", before) and span[:1].isupper() and not re.search(r"[.!?]\s+[A-Z][a-z]+\s+$", before) \
            and not re.search(r"(^|\s)(The|In|On|At|By|For|From|As|When|After|Before)\s+$", before):
        return False  # starts inside a capitalised name: "Lionel Ismay" of "Lord Hastings Lionel Ismay"
    return True


def aggregate(probs: Sequence[float], how: str = AGGREGATION) -> float:
    """The score of an answer quoted by several passages, one probability per distinct passage."""
    if how == "max":
        return max(probs)
    remaining = 1.0
    for p in probs:
        remaining *= 1.0 - p
    return 1.0 - remaining


def _same_paragraph(a: AnswerSpan, b: AnswerSpan) -> bool:
    pa, pb = a.retrieved.paragraph, b.retrieved.paragraph
    return (pa.document_id, pa.paragraph_index) == (pb.document_id, pb.paragraph_index)


def overlaps(a: AnswerSpan, b: AnswerSpan) -> bool:
    """Both spans quote overlapping characters of the same paragraph."""
    return _same_paragraph(a, b) and a.start < b.end and b.start < a.end


def _contains(a: str, b: str) -> bool:
    """Normalised ``b`` occurs in normalised ``a`` as whole words."""
    return f" {b} " in f" {a} "


def select_answers(
    ranked: Sequence[AnswerSpan],
    top_n: int,
    *,
    ratio: float = ALTERNATIVE_RATIO,
    how: str = AGGREGATION,
    key: Callable[[str], str] = normalize_answer,
    form: bool = True,
) -> list[AnswerSpan]:
    """At most ``top_n`` distinct answers from ``ranked`` (calibrated spans, best first).

    ``form=False`` skips the well-formedness filter (to measure it: eval/reader/alternatives.py).
    """
    groups: dict[str, list[AnswerSpan]] = {}
    order: list[str] = []
    for span in ranked:
        k = key(span.text)
        if not k:
            continue
        group = groups.get(k)
        if group is None:
            groups[k] = [span]
            order.append(k)
        elif not any(_same_paragraph(span, s) for s in group):
            group.append(span)  # the same answer in another paragraph: support
    answers: list[AnswerSpan] = []
    for k in order:
        best, *support = groups[k]
        score = aggregate([s.score for s in groups[k]], how)
        answers.append(AnswerSpan(best.retrieved, best.start, best.end, score, supporting=support))
    answers.sort(key=lambda s: -s.score)
    kept: list[AnswerSpan] = []
    for span in answers:
        if len(kept) >= top_n:
            break
        if kept:
            k = key(span.text)
            if span.score < ratio * kept[0].score or (form and not well_formed(span.retrieved.paragraph.text, span.start, span.end)):
                continue
            if any(overlaps(span, other) or _contains(key(other.text), k) or _contains(k, key(other.text)) for other in kept):
                continue  # "Lord Hastings Lionel" is no alternative to "Lord Hastings Lionel Ismay"
        kept.append(span)
    return kept
