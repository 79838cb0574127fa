"""Other readings of a follow-up's "it" (issue 25): the previous question's event or its answer."""
from __future__ import annotations

from rag.chat import ChatTurn, rewrite_question
from rag.followups import best_reading, event_of, other_referents
from rag.types import Answer, QAResult


def test_the_event_of_a_where_or_when_question():
    assert event_of("Where did NATO hold its 75th anniversary summit?", "NATO") == "NATO's 75th anniversary summit"
    assert event_of("When did South Korea join the summit?", "South Korea") == "the summit"
    assert event_of("Who was NATO's first Secretary General?", "NATO") is None
    assert event_of("Where did NATO go?", "NATO") is None


def test_readings_of_it_after_a_where_question():
    history = [ChatTurn("user", "Where did NATO hold its 75th anniversary summit?"), ChatTurn("assistant", "Washington D.C. [1]\n\n> quote"),
               ChatTurn("user", "Who hosted it?")]
    assert [r.question for r in rewrite_question(history).readings()] == [
        "Who hosted NATO?", "Who hosted NATO's 75th anniversary summit?", "Who hosted Washington D.C.?"]


def test_a_person_answer_is_not_read_as_it():
    assert other_referents("Who was NATO's first Secretary General?", "Lord Ismay", "NATO") == []
    history = [ChatTurn("user", "Who was NATO's first Secretary General?"), ChatTurn("assistant", "Lord Ismay [1]"), ChatTurn("user", "When was it founded?")]
    assert [r.question for r in rewrite_question(history).readings()] == ["When was NATO founded?"]


def _result(score: float | None) -> QAResult:
    answers = [] if score is None else [Answer(text="x", score=score, context="x", citation=None)]  # type: ignore[arg-type]
    return QAResult("q", answers, [], {})


def test_best_reading_is_the_best_answered_one_else_the_first():
    assert best_reading(["a", "b", "c"], [_result(0.3), _result(0.8), _result(None)]) == ("b", _result(0.8))
    assert best_reading(["a", "b"], [_result(None), _result(None)])[0] == "a"
