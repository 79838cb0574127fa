"""A question that asks for several things gets the whole coordinated list, not one item of it.

"Which countries are the Indo-Pacific Four?" over "... the Indo-Pacific Four: Australia, Japan,
New Zealand and South Korea." got "South Korea": an extractive reader trained on SQuAD, where
nine answers in ten are one entity, puts its best span on one item.  When the question asks for
several things (a plural "which/what ... countries", "what are the ...", "name/list the ...",
"which two ...") and the span is an item of a list written as one coordination ("A, B, C and D",
"A or B"), the answer becomes the list.  Items are short (up to four words) and alike (all
capitalised when the answer is), so a sentence's clauses are never taken for a list.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import TypeVar

from rag.types import AnswerSpan

S = TypeVar("S", bound=AnswerSpan)

# "what are the ...", "who were the ...", "name the ...", "list all ..."
_LIST_REQUEST = re.compile(r"^\s*(?:(?:what|who|which)\s+(?:are|were)\s+(?:the|all|some)\b|(?:name|list)\s+(?:the|all)\b)", re.IGNORECASE)
_WH = re.compile(r"^\s*(?:which|what)\s+(.*)$", re.IGNORECASE)
_COUNTS = frozenset("two three four five six seven eight nine ten several many both all".split())
# A modifier before the head noun: "which scripting languages", "which European countries".
_MODIFIER = re.compile(r"(?:ing|al|ed|ic|ish|ese|an|ern|ive|ous|ful|ary)$", re.IGNORECASE)
# What follows a plural subject: "which countries are", "what channels were removed", "what fields
# may"; "what delimits the", "what surrounds chloroplasts" and "which Broncos player" are not lists.
_AFTER_SUBJECT = frozenset("are were do did have had can could may might will would should must make made include "
                           "included form formed come came belong belonged use used".split())
_NOT_PLURAL = frozenset("does has was is its this thus plus gas bus news series species means".split())


def _plural(word: str) -> bool:
    word = word.lower().strip("?,.")
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s", "’s")) and word not in _NOT_PLURAL


# What joins two items: ", and ", ", or ", ", ", " and ", " or ".
_JOIN = r"(?:,\s*(?:and|or)\s+|,\s*|\s+(?:and|or)\s+)"
_SEPARATOR = re.compile(r"\s*" + _JOIN)
_SEPARATOR_AT_END = re.compile(_JOIN + "$")
_ITEM_WORDS = 4
# A list candidate within this share of the best score goes first for a plural question.
LIST_PREFERENCE = 0.85
_MAX_LIST_CHARS = 200
# Words that end an item on its outer side: "written in Tcl", "such as cellphones".
_STOP = frozenset(
    "a an the in on of for to as at by from with into such include includes including like are is was were be "
    "use used uses using which that this these those its their his her our and or but also it they we you he she "
    "can could will would may might must should has have had do does did not so even then thus "
    "example instance addition particular contrast general fact short".split()
)


def asks_for_several(question: str) -> bool:
    """Does the question ask for several things?  "Which countries ...", "which two ...", "which
    scripting languages ...", "what are the ...", "name the ..."; not "which of ...", "what is ...",
    "which process handles ..." (a verb after a singular noun)."""
    if _LIST_REQUEST.search(question):
        return True
    match = _WH.search(question)
    if match is None:
        return False
    words = [w.strip("?,.;:").lower() for w in match.group(1).split()[:3]] + ["", ""]
    if words[0] in _COUNTS:
        return True
    if _plural(words[0]):
        return words[1] in _AFTER_SUBJECT
    return bool(_MODIFIER.search(words[0])) and _plural(words[1]) and words[2] in _AFTER_SUBJECT


def widen_to_list(question: str, text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` widened to the coordinated list it is an item of, when the question asks
    for several things and the list has two or more items joined by "and"/"or" (or three or
    more by commas); otherwise unchanged."""
    if not asks_for_several(question) or not text[start:end].strip():
        return start, end
    capitalised = text[start].isupper()
    items = [(start, end)]
    position = start
    while True:  # leftwards: "<item><separator>" right before the list so far
        before = text[max(0, position - 60):position]
        separator = _SEPARATOR_AT_END.search(before)
        if separator is None:
            break
        item = _item_before(text, position - len(separator.group(0)), capitalised)
        if item is None:
            break
        items.insert(0, item)
        position = item[0]
    position = end
    while True:  # rightwards: "<separator><item>" right after
        separator = _SEPARATOR.match(text, position)
        if separator is None or separator.end() == position:
            break
        item = _item_after(text, separator.end(), capitalised)
        if item is None or not re.match(r"\s*(?:$|[.,;:!?)(])|\s+(?:and|or)\s", text[item[1]:item[1] + 6]):
            break  # an item runs to a comma, a bracket or the sentence's end: "pigeons and even brought ..." is no list
        items.append(item)
        position = item[1]
    numeric = text[start:end].strip()[:1].isdigit()
    while len(items) > 1 and not _part_ok(text[items[0][0]:items[0][1]], capitalised, numeric):
        items.pop(0)
    while len(items) > 1 and not _part_ok(text[items[-1][0]:items[-1][1]], capitalised, numeric):
        items.pop()
    first, last = items[0][0], items[-1][1]
    joined = text[first:last]
    coordinated = re.search(r"\s(?:and|or)\s", joined) is not None
    if len(items) < 2 or (len(items) == 2 and not coordinated) or len(joined) > _MAX_LIST_CHARS or re.search(r"[.;:!?]\s", joined):
        return start, end
    return first, last


def _item_like(word: str, capitalised: bool) -> bool:
    bare = word.strip("()\"'“”")
    if not bare or bare.lower() in _STOP or not re.match(r"^[\w][\w.'’/+-]*$", bare):
        return False
    # Items are alike: "Washington Declaration" is no item of "cybersecurity and hybrid threats".
    return bare[0].isupper() or bare[0].isdigit() if capitalised else not bare[0].isupper()


def _item_before(text: str, end: int, capitalised: bool) -> tuple[int, int] | None:
    """The item ending at ``end``: up to _ITEM_WORDS item-like words going left."""
    start = end
    for match in reversed(list(re.finditer(r"\S+", text[max(0, end - 80):end]))):
        word_start = max(0, end - 80) + match.start()
        if start - (word_start + len(match.group(0))) > 1 or not _item_like(match.group(0), capitalised):
            break
        start = word_start
        if len(text[start:end].split()) >= _ITEM_WORDS:
            break
    return (start, end) if start < end else None


def _item_after(text: str, start: int, capitalised: bool) -> tuple[int, int] | None:
    """The item starting at ``start``: up to _ITEM_WORDS item-like words going right, without a
    trailing comma or full stop."""
    end = start
    for match in re.finditer(r"\S+", text[start:start + 80]):
        word = match.group(0).rstrip(",.;:!?)")
        if start + match.start() - end > 1 or not _item_like(word, capitalised):
            break
        end = start + match.start() + len(word)
        if match.group(0) != word or len(text[start:end].split()) >= _ITEM_WORDS:
            break
    return (start, end) if end > start else None


def is_list(text: str) -> bool:
    """Is ``text`` itself a coordinated list of short, alike items ("A, B and C", "A or B")?
    "sodium carbonate and potassium carbonate, and drew attention" is not: a clause is no item."""
    parts = [p for p in _SEPARATOR.split(text.strip()) if p]
    if not (len(parts) >= 3 or (len(parts) == 2 and re.search(r"\s(?:and|or)\s", text))):
        return False
    capitalised = parts[0][:1].isupper() or parts[0].lower().startswith(("the ", "a ", "an "))
    return all(_part_ok(part, capitalised, numeric=False) for part in parts)


def _part_ok(part: str, capitalised: bool, numeric: bool) -> bool:
    """One list item: at most _ITEM_WORDS words after a leading article, item-like words (a
    capitalised "of"/"the" joiner inside a name is fine), not a bare number unless the answer is
    one, not an "-ly" adverb ("Currently, New Jersey, ...")."""
    words = part.split()
    if words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    if not words or len(words) > _ITEM_WORDS:
        return False
    if not numeric and all(w.strip(".,").isdigit() for w in words):
        return False
    if len(words) == 1 and words[0].lower().endswith("ly"):
        return False
    inner = [w for i, w in enumerate(words) if not (0 < i < len(words) - 1 and w.lower() in ("of", "the", "and", "de"))]
    return all(_item_like(w, capitalised) for w in inner)


def prefer_lists(ranked: list[S], share: float = LIST_PREFERENCE) -> list[S]:
    """For a question that asks for several things: the best list-shaped candidate whose score is
    at least ``share`` of the best one's swaps scores with the best one (and takes the first
    place).  The reader scored "South Korea" 0.849 and "Australia, Japan, and New Zealand" 0.792
    for "Which countries are the Indo-Pacific Four?"."""
    if not ranked or is_list(ranked[0].text):
        return ranked
    top = ranked[0].score
    for i, span in enumerate(ranked[1:], start=1):
        if span.score < share * top:
            break
        after = span.retrieved.paragraph.text[span.end:span.end + 1]
        if is_list(span.text) and not (after.isalnum() or after == "-"):  # not cut mid-word: "the Iroquoian|-speaking"
            return [replace(span, score=top), replace(ranked[0], score=span.score), *ranked[1:i], *ranked[i + 1:]]
    return ranked
