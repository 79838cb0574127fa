"""Sentences of a paragraph: where they start and end, and the one around an answer."""
from __future__ import annotations

import re

# Words that end in a period without ending a sentence.
_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "mt", "gen", "col", "lt", "sgt", "capt", "cmdr",
    "gov", "sen", "rep", "pres", "vs", "etc", "e.g", "i.e", "no", "nos", "fig", "figs", "vol", "pp",
    "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "u.s", "u.k", "u.n", "d.c", "a.m", "p.m", "approx", "dept", "est", "al",
}
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space and a capital,
# digit or opening quote.
_SENTENCE_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``; whitespace between sentences belongs to none.
    A blank line (a block boundary: a heading over its paragraph, a list item) always ends one."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for block in text.split("\n\n"):
        for a, b in _block_sentences(block):
            a += len(block[a:b]) - len(block[a:b].lstrip())
            if a < b:
                spans.append((offset + a, offset + b))
        offset += len(block) + 2
    return spans


def _block_sentences(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BOUNDARY.finditer(text):
        stop = match.start() + 1
        # include closing quotes/brackets that follow the punctuation
        while stop < len(text) and text[stop] in "\"'”’)]":
            stop += 1
        word = _last_word(text, start, match.start())
        if word and (_is_abbreviation(word) or len(word.strip("(\"'“")) == 1):
            continue  # "Dr. Kim", "Lance D. Jackson"
        spans.append((start, stop))
        start = match.end()
    if start < len(text) and text[start:].strip():
        end = len(text.rstrip())
        spans.append((start, end))
    return spans


def _last_word(text: str, start: int, end: int) -> str:
    """The word ending at ``end`` (not before ``start``), read from at most 32 characters back:
    abbreviations are short, and a regex anchored at the end rescans a 40,000-character token
    once per boundary (6.5 s per question on one such document)."""
    window = text[max(start, end - 32) : end]
    parts = window.split()
    return parts[-1] if parts and not window[-1:].isspace() else ""


def _is_abbreviation(word: str) -> bool:
    return word.lower().strip("(\"'“").rstrip(".") in _ABBREVIATIONS


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of the sentence(s) covering ``text[start:end]``."""
    spans = sentence_spans(text) or [(0, len(text))]
    first = next((s for s, e in spans if e > start), spans[-1][0])
    last = next((e for s, e in reversed(spans) if s < end), spans[0][1])
    return min(first, start), max(last, end)
