"""Features of a candidate span beyond the model's margin, for the score calibration.

The span margin alone confuses two cases that real documents produce often: a right answer in
a table cell or an option list (where a reader trained on prose is unsure and the margin is
low), and a confident span in prose whose sentence shares nothing with the question (a false
premise, the neighbouring option).  These features let the calibration tell them apart:

* ``near``: the share of the question's content words found in the sentence(s) around the span
  (the span's own words excluded); a right answer sits where the question's words are;
* ``copy``: the share of the span's words that the question already contains (an answer that
  repeats the question is rarely the answer);
* ``table`` / ``listing`` / ``code``: what kind of passage the span is in, read from the text itself
  (so training, which has only texts, and the service agree).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[\w-]+")
_STOP = frozenset(
    "a an the of in on at to for by with from and or is was were are be been what which who whom whose when where why how "
    "did do does that this these those as it its into than then i you can my me use used using should would could will "
    "there their they we our if not no yes about get set given default".split()
)
NAMES = ("near", "copy", "table", "listing", "code")
_OPTION_LINE = re.compile(r"^\s*(?:-{1,2}\w|[*•·-]\s|\d+[.)]\s)", re.MULTILINE)


def content_words(text: str) -> set[str]:
    """Lower-case words that carry meaning, with a plural 's' dropped ("ports" ~ "port")."""
    out = set()
    for w in _WORD.findall(text.lower()):
        w = w.strip("-")
        if len(w) > 1 and w not in _STOP:
            out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def passage_kind(text: str) -> str:
    """table | listing | code | prose, from the passage text as the parsers write it."""
    lines = [line for line in text.split("\n") if line.strip()]
    if sum(" | " in line for line in lines) >= 2:
        return "table"
    if len(lines) >= 2 and len(_OPTION_LINE.findall(text)) >= 2:
        return "listing"
    if len(lines) >= 3 and sum(bool(re.search(r"[{};=()]\s*$|^\s{2,}\S", line)) for line in lines) >= len(lines) / 2:
        return "code"
    return "prose"


def _window(context: str, start: int, end: int, reach: int = 160) -> str:
    """The text around the span, cut at sentence ends or line breaks within ``reach`` characters."""
    lo = max(0, start - reach)
    left = context[lo:start]
    cut = max(left.rfind(". "), left.rfind("\n"))
    left = left[cut + 1:] if cut >= 0 else left
    right = context[end:end + reach]
    stop = min([i for i in (right.find(". "), right.find("\n")) if i >= 0], default=len(right))
    return left + " " + right[:stop]


def span_features(question_words: set[str], context: str, start: int, end: int, kind: str | None = None) -> tuple[float, ...]:
    """(near, copy, table, listing, code) for ``context[start:end]``; see the module docstring."""
    kind = kind or passage_kind(context)
    span_words = content_words(context[start:end])
    around = content_words(_window(context, start, end)) - span_words
    near = len(question_words & around) / len(question_words) if question_words else 0.0
    copy = len(span_words & question_words) / len(span_words) if span_words else 0.0
    return (near, copy, float(kind == "table"), float(kind == "listing"), float(kind == "code"))


def candidate_features(question: str, contexts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[list[tuple[float, ...]]]:
    """``span_features`` for every (start, end) of every passage, the question read once."""
    words = content_words(question)
    out = []
    for context, per_passage in zip(contexts, spans):
        kind = passage_kind(context)
        out.append([span_features(words, context, s, e, kind) for s, e in per_passage])
    return out
