"""Other readings of a follow-up's "it": the previous question's event, or the answer it got.

After "Where did NATO hold its 75th anniversary summit?" -> "Washington D.C.", "Who hosted it?"
was read only as "Who hosted NATO?" (the previous question's subject), which the documents do not
answer (issue 25).  The summit ("NATO's 75th anniversary summit", the object of a where/when
question) and the answer itself are likelier referents there, so the chat asks every reading in
one batch and keeps the one the documents answer best (:func:`best_reading`); the response shows
which reading it chose.  No pattern here backtracks: prefixes are matched, the rest is cut with
str methods.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from rag.types import QAResult

# "where/when did|was|... <subject> <verb> <object>?"
_EVENT_QUESTION = re.compile(r"\s*(?:where|when)\s+(?:did|does|do|was|were|is|are|will|has|have|had)\s+", re.IGNORECASE)
_THING_QUESTION = re.compile(r"\s*(?:where|which|what)\b", re.IGNORECASE)
_POSSESSIVE_PRONOUNS = ("its ", "their ", "his ", "her ")
_MAX_REFERENT_WORDS = 8
R = TypeVar("R")


def event_of(previous: str, subject: str | None) -> str | None:
    """The object of a where/when question: "Where did NATO hold its 75th anniversary summit?" ->
    "NATO's 75th anniversary summit" (its possessive given back to the subject)."""
    match = _EVENT_QUESTION.match(previous)
    if match is None:
        return None
    rest = previous[match.end():].rstrip(" ?.!")
    if subject and rest.startswith(subject + " "):
        rest = rest[len(subject) + 1:]
    else:
        rest = rest.partition(" ")[2]
    obj = rest.partition(" ")[2].strip()  # after the verb
    if subject:
        for pronoun in _POSSESSIVE_PRONOUNS:
            if obj.lower().startswith(pronoun):
                obj = f"{subject}'s {obj[len(pronoun):]}"
                break
    return obj if 1 <= len(obj.split()) <= _MAX_REFERENT_WORDS and "\n" not in obj else None


def other_referents(previous: str, previous_answer: str | None, subject: str | None) -> list[str]:
    """What else "it" may stand for, in order: the previous question's event, then its answer when
    that answer is a place or thing (the previous question asked where, which or what; a person
    answering "who" is "he" or "she", not "it")."""
    found: list[str] = []
    thing_answer = previous_answer if _THING_QUESTION.match(previous) else None
    for candidate in (event_of(previous, subject), thing_answer):
        if candidate and candidate != subject and candidate not in found:
            found.append(candidate)
    return found


def best_reading(readings: Sequence[R], results: Sequence[QAResult]) -> tuple[R, QAResult]:
    """The reading whose best answer scores highest; the first reading when none is answered."""
    best = 0
    for i, result in enumerate(results):
        if result.answers and (not results[best].answers or result.answers[0].score > results[best].answers[0].score):
            best = i
    return readings[best], results[best]
