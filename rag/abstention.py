"""When the service abstains, and what it says: the one rule and the one text.

``Pipeline`` decides (answer iff the best span's score clears the threshold: :func:`answers`),
and the evaluation harness applies the same function to its candidates.  Every abstention
carries a machine-readable ``cause`` and the sentence people are told (``NO_ANSWER_MESSAGE``); chat,
``rag ask`` and the web page show those fields, never a copy of the sentence or a reason parsed
back out of one.
"""
from __future__ import annotations

from enum import StrEnum

from rag.types import NoAnswer

# What a person is told when the service abstains; the numbers go to NoAnswer's other fields.
NO_ANSWER_MESSAGE = "The documents don't say."


class Cause(StrEnum):
    NO_PASSAGE = "no_passage"  # retrieval found nothing to read
    NO_CANDIDATE = "no_candidate"  # the reader found no span in the passages
    BELOW_THRESHOLD = "below_threshold"  # the best span scored under the threshold


# What each cause adds to the message, in plain words and without numbers.
DETAILS = {
    Cause.NO_PASSAGE: "no passage in the index matches the question",
    Cause.NO_CANDIDATE: "no answer was found in the retrieved passages",
    Cause.BELOW_THRESHOLD: "no candidate answer was confident enough",
}


def answers(score: float, threshold: float) -> bool:
    """The answer rule: a span is given as an answer iff its score reaches the threshold."""
    return score >= threshold


def no_answer(cause: Cause, best_score: float | None = None, threshold: float | None = None) -> NoAnswer:
    detail = DETAILS[cause]
    reason = detail if cause is Cause.NO_PASSAGE else f"the documents do not appear to answer this: {detail}"
    return NoAnswer(reason, best_score, threshold, NO_ANSWER_MESSAGE, cause.value)


def detail_of(no_answer: NoAnswer | None) -> str:
    """The plain-language detail of an abstention ("" when its cause is unknown)."""
    if no_answer is None:
        return ""
    try:
        return DETAILS[Cause(no_answer.cause)]
    except ValueError:
        return ""
