"""Clean answer spans: whole sentences' parts, balanced quotes and brackets, whole technical tokens.

The span reader's spans come from word-piece offsets, so they can stop anywhere: past a
closing quote into the next sentence (``extended input/output". It is a library/API``), on an
opening quote (``‘-P``), or inside a token whose pieces the model scored apart (``contrib`` of
``contrib/minizip``).  ``clean_candidates`` cleans one passage's candidates: those across a
sentence boundary go when others do not, the rest go through ``clean_span``, and a span that
two candidates clean to is kept once.  ``clean_span`` moves the boundaries of one span, in this
order:

1. a span across a sentence boundary or a line break (table rows, list items) keeps its part in
   the sentence where it starts (the first part with a letter or digit; an item number such as
   the "44" of "EAR99.\n\n44. Can you" does not count);
2. a quote or bracket in the span whose partner lies outside it: a quote is dropped with the side
   of the span outside the quotes (the quoted words are the answer); an opening bracket whose
   partner closes within ``BRACKET_REACH`` characters is closed (``strftime('%J'`` ->
   ``strftime('%J', ...)``), otherwise the bracket and what follows it go; a closing bracket
   and what follows it go;
3. a boundary inside a technical token (an option ``-n``/``--bwlimit=RATE``, ``key=value``,
   ``foo;bar``, a path, ``snake_case``; tokens end at spaces, quotes, brackets and commas) moves
   to the token's edge, and one inside a word or a number (``Numb|a``, ``3|.14``) to the word's;
   the token's sentence punctuation stays out;
4. spaces and sentence punctuation (``.,;:``) at the ends go (the period of an abbreviation
   that the sentence splitter knows, ``Jr.``, ``U.S.``, stays), and so do quotes around the whole
   span (``‘-I’``).

Offsets stay exact (``text[start:end]`` is the answer) and the result is never empty: when the
rules leave nothing, the original span is returned.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, TypeVar

from rag.sentences import _is_abbreviation, sentence_spans  # the splitter's own abbreviation list

# An opening bracket is closed when its partner is at most this many characters past the span.
# A call or a short parenthetical ("author (year)", "strftime('%J', ...)") closes within ~10
# characters; a longer aside is not part of a short answer (answers on realdocs gold: median 12
# characters, 90th percentile 33).
BRACKET_REACH = 16
# A token longer than this is not extended into (a base64 blob or a minified line is no option).
MAX_TOKEN_CHARS = 80

_BRACKETS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _BRACKETS.items()}
_QUOTE_CHARS = frozenset('"“”‘’')
_SENTENCE_PUNCT = ".,;:!?"
# A whitespace token is technical (extended to its whole) when it is an option ("-n",
# "--bwlimit=RATE"), an assignment ("key=value"), a ";"-joined name ("foo;bar"), a path or URL
# ("contrib/minizip") or holds an underscore ("mnras_template.tex").  Hyphenated prose
# ("so-called"), dotted names ("json.JSONDecodeError", whose last part is an answer by itself)
# and numbers are not.
_OPTION = re.compile(r"--?[A-Za-z0-9?]")
_JOINED = re.compile(r"\S;\S|[a-z0-9_.~*-]/[a-z0-9_.~*-]|^[/~.]+/|[^\W_]_|_[^\W_]")
_PLACEHOLDER = re.compile(r"\[?[A-Z][A-Z0-9_-]*\]?$")
# The number opening a numbered item ("44. Can you ..." in a FAQ): a span that runs onto it has
# not crossed into the next item's text (zlib FAQ: "EAR99.\n\n44").
_ITEM_NUMBER = re.compile(r"(?<![^\n])\d{1,3}$")
_TOKEN_STOPS = frozenset("()[]{}\"“”‘’,")


@lru_cache(maxsize=256)
def _layout(text: str) -> tuple[tuple[tuple[int, int], ...], dict[int, int]]:
    """The text's sentence parts (sentences split again at line breaks) and quote/bracket partners."""
    parts: list[tuple[int, int]] = []
    for s, e in sentence_spans(text):
        for line in re.finditer(r"[^\n]+", text[s:e]):
            parts.append((s + line.start(), s + line.end()))
    return tuple(parts), _partners(text)


def _partners(text: str) -> dict[int, int]:
    """Position -> partner position for every paired quote or bracket (both directions).

    ASCII apostrophes are never quotes; ’ closes only an open ‘ and not between two letters
    (library’s); an ASCII double quote opens after a space or an opener and closes before one.
    """
    partner: dict[int, int] = {}
    stack: list[tuple[str, int]] = []

    def close(opener: str, at: int) -> None:
        for k in range(len(stack) - 1, -1, -1):
            if stack[k][0] == opener:
                partner[stack[k][1]] = at
                partner[at] = stack[k][1]
                del stack[k:]
                return

    for i, ch in enumerate(text):
        if ch in _BRACKETS or ch in "“‘":
            stack.append((ch, i))
        elif ch in _CLOSERS:
            close(_CLOSERS[ch], i)
        elif ch == "”":
            close("“", i)
        elif ch == "’":
            if not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
                close("‘", i)
        elif ch == '"':
            before = text[i - 1] if i else " "
            after = text[i + 1] if i + 1 < len(text) else " "
            if any(o == '"' for o, _ in stack) and not after.isalnum():
                close('"', i)
            elif before.isspace() or before in "([{“‘" or not i:
                stack.append(('"', i))
    return partner


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _sentence_pieces(text: str, parts, start: int, end: int) -> list[tuple[int, int]]:
    """The span's pieces in each sentence part, those with a letter or digit and no item number."""
    pieces = [(max(s, start), min(e, end)) for s, e in parts if e > start and s < end]
    if len(pieces) == 1:
        return pieces
    return [(s, e) for s, e in pieces if _has_word(text[s:e]) and not _ITEM_NUMBER.match(text, s, e)]


def crosses_sentence(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` has words in two sentences (or two lines)."""
    return len(_sentence_pieces(text, _layout(text)[0], start, end)) > 1


def _balance(text: str, partner: dict[int, int], start: int, end: int) -> tuple[int, int]:
    """Drop or close quotes and brackets whose partner is outside [start, end)."""
    outside = {partner[i] for i in range(start, end) if i in partner and not start <= partner[i] < end}
    if outside == {start - 1, end} and text[start - 1] in _QUOTE_CHARS and text[end] in _QUOTE_CHARS:
        return start - 1, end + 1  # quoted items whose outer quotes were left out: 'Blue Harvest" and "420'
    for _ in range(8):  # each pass fixes one crossing; answers hold a handful of these at most
        crossing = next((i for i in range(start, end) if i in partner and not start <= partner[i] < end), None)
        if crossing is None:
            break
        ch, other = text[crossing], partner[crossing]
        if ch in _QUOTE_CHARS:
            # Keep the quoted side: an opener keeps what follows it, a closer what precedes it.
            left, right = (start, crossing), (crossing + 1, end)
            keep, spare = (right, left) if other >= end else (left, right)
            start, end = keep if _has_word(text[keep[0]:keep[1]]) else spare
        elif ch in _BRACKETS and other - end < BRACKET_REACH and _no_break(text, end, other):
            end = other + 1
        elif _has_word(text[start:crossing]):
            end = crossing
        else:
            start = crossing + 1
        if start >= end:
            break
    return start, end


def _no_break(text: str, a: int, b: int) -> bool:
    return "\n" not in text[a:b] and not re.search(r"[.!?]\s", text[a:b])


def _token(text: str, i: int) -> tuple[int, int]:
    """The token around position ``i``: no spaces, quotes, brackets or commas, and no sentence
    punctuation at its end (``boxwidth=2cm`` of ``[boxwidth=2cm]``, ``--bwlimit=RATE`` of
    ``‘--bwlimit=RATE’.``)."""
    s = i
    while s > 0 and text[s - 1] not in _TOKEN_STOPS and not text[s - 1].isspace():
        s -= 1
    e = i
    while e < len(text) and text[e] not in _TOKEN_STOPS and not text[e].isspace():
        e += 1
    while e > s and text[e - 1] in _SENTENCE_PUNCT:
        e -= 1
    return s, e


def _whole_token(text: str, start: int, end: int) -> tuple[int, int]:
    ts, te = _token(text, start)
    a = _extent(text[ts:te], start - ts, min(end, te) - ts)[0] if ts < start < te else start - ts
    start = ts + a if ts + a < start else _word_start(text, start)
    ts, te = _token(text, end - 1)
    b = _extent(text[ts:te], max(start, ts) - ts, end - ts)[1] if ts < end < te else end - ts
    end = ts + b if ts + b > end else _word_end(text, end)
    return start, end


def _extent(token: str, a: int, b: int) -> tuple[int, int]:
    """The part of ``token`` that the part ``token[a:b]`` stands for.

    An option (``-n``, ``--bwlimit=RATE``) or a path, ``;``-joined or ``snake_case`` name is one
    answer.  The key or the value of ``key=value`` is an answer by itself (``tabsize=8``: "8"),
    unless the value is an option's placeholder (``RATE`` of ``--bwlimit=RATE`` answers "which
    option?"); a span across the "=" takes the whole.
    """
    if len(token) > MAX_TOKEN_CHARS:
        return a, b
    option = bool(_OPTION.match(token))
    key, eq, value = token.partition("=")
    if not eq or option and _PLACEHOLDER.match(value):
        return (0, len(token)) if option or _JOINED.search(token) else (a, b)
    k = len(key) + 1
    if b <= len(key):
        return (0, len(key)) if option or _JOINED.search(key) else (a, b)
    if a >= k:
        return (k, len(token)) if _JOINED.search(value) else (a, b)
    return 0, len(token)


def _in_word(text: str, i: int) -> bool:
    """``text[i]`` continues the word before it: a letter or digit, or "." or "," between digits (3.14, 14,000)."""
    if not 0 < i < len(text):
        return False
    if text[i].isalnum():
        return text[i - 1].isalnum()
    return text[i] in ".," and text[i - 1].isdigit() and i + 1 < len(text) and text[i + 1].isdigit()


def _word_start(text: str, i: int) -> int:
    while i > 0 and _in_word(text, i):
        i -= 1
    return i


def _word_end(text: str, i: int) -> int:
    while i < len(text) and (_in_word(text, i) or i > 0 and text[i - 1] in ".," and _in_word(text, i - 1)):
        i += 1
    return i


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and (text[start].isspace() or text[start] in ",;:"):
        start += 1
    while start < end:
        ch = text[end - 1]
        if ch.isspace() or ch in ",;:!?":
            end -= 1
        elif ch == "." and not _is_abbreviation(text[start:end].split()[-1]):
            end -= 1
        else:
            break
    return start, end


def clean_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` moved to clean boundaries in ``text`` (see the module docstring)."""
    if not 0 <= start < end <= len(text):
        return start, end
    parts, partner = _layout(text)
    s, e = (_sentence_pieces(text, parts, start, end) or [(start, end)])[0]
    s, e = _balance(text, partner, s, e)
    if s < e:
        s, e = _whole_token(text, s, e)
        s, e = _strip(text, s, e)
    if e - s > 2 and text[s] in _QUOTE_CHARS and partner.get(s) == e - 1:
        s, e = s + 1, e - 1  # one quoted item: ‘-I’ is -I
    if s >= e or not _has_word(text[s:e]) and _has_word(text[start:end]):
        return start, end
    return s, e


class _Span(Protocol):
    start: int
    end: int


S = TypeVar("S", bound=_Span)


def clean_candidates(text: str, candidates: Sequence[S]) -> list[S]:
    """``candidates`` (spans of ``text``, best first) with clean spans, each span once (the best).

    A candidate across a sentence boundary is dropped when another one is not: its start and
    end logits point at two answers, and the reader's own shorter spans choose between them
    better than a rule.  SQuAD v1.1 dev reader, 2,000 questions, EM / F1: 61.55 / 71.16 cutting
    each such span at its first sentence, 61.65 / 71.34 at its last, 61.75 / 71.32 dropping it
    (61.4 / 71.24 uncleaned); eval/realdocs EM 46.88, 46.88, 47.66 (46.09); eval/RESULTS.md.
    """
    whole = [c for c in candidates if not crosses_sentence(text, c.start, c.end)] or list(candidates)
    out: list[S] = []
    seen: set[tuple[int, int]] = set()
    for c in whole:
        s, e = clean_span(text, c.start, c.end)
        if (s, e) not in seen:
            seen.add((s, e))
            c = copy.copy(c)
            c.start, c.end = s, e
            out.append(c)
    return out
