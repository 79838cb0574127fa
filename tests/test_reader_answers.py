"""Answer selection: support across passages, clean alternatives, plain-language abstention."""
from __future__ import annotations

from collections.abc import Sequence

import pytest

from rag.reading.answers import aggregate, select_answers, well_formed
from rag.reading.base import Reader
from rag.types import AnswerSpan, Paragraph, Passage, ReaderOutput, RetrievedPassage
from rag.api.schemas import ask_response

NATO = ("In the words of NATO's first Secretary General, Lord Hastings Lionel Ismay, the alliance was "
        "created to keep the Soviet Union out. Russia and North Korea on the one hand and China and Iran "
        "on the other were named. The summit was held in Washington in 2024.")


def _rp(text: str, index: int = 0, doc: str = "doc") -> RetrievedPassage:
    para = Paragraph(doc, index, text, 0, len(text))
    return RetrievedPassage(Passage(index, doc, index, text, 0, 0), para, 1.0, rank=index)


def _span(rp: RetrievedPassage, phrase: str, score: float, nth: int = 0) -> AnswerSpan:
    start = -1
    for _ in range(nth + 1):
        start = rp.paragraph.text.index(phrase, start + 1)
    return AnswerSpan(rp, start, start + len(phrase), score)


@pytest.mark.parametrize("phrase, ok", [
    ("Lord Hastings Lionel Ismay", True),
    ("Washington", True),
    ("2024", True),
    ("Lord Hastings Lionel", False),  # the name goes on
    ("Lionel Ismay", False),  # starts inside the name
    ("Russia and North Korea on the one hand and China", False),  # cut inside the list
    ("Russia and North Korea on the one hand and", False),  # dangling conjunction
    ("and China", False),
    ("ashington", False),  # mid-word
    ("held in", False),
])
def test_well_formed(phrase, ok):
    start = NATO.index(phrase)
    assert well_formed(NATO, start, start + len(phrase)) is ok


def test_aggregate():
    assert aggregate([0.6], "noisy_or") == pytest.approx(0.6)
    assert aggregate([0.6, 0.5], "noisy_or") == pytest.approx(0.8)
    assert aggregate([0.6, 0.5], "max") == 0.6


def test_same_answer_in_several_passages_supports_itself():
    a, b, c = _rp(NATO, 0, "a"), _rp("Ismay led it. Lord Hastings Lionel Ismay was its first head.", 1, "b"), _rp(NATO, 2, "c")
    ranked = [_span(a, "Lord Hastings Lionel Ismay", 0.6), _span(b, "Lord Hastings Lionel Ismay", 0.5),
              _span(a, "Washington", 0.55), _span(c, "Lord Hastings Lionel Ismay", 0.2)]
    answers = select_answers(ranked, 3, ratio=0.5, how="noisy_or")
    best = answers[0]
    assert best.text == "Lord Hastings Lionel Ismay" and best.retrieved is a
    assert best.score == pytest.approx(1 - 0.4 * 0.5 * 0.8)
    assert [s.retrieved for s in best.supporting] == [b, c]
    assert [s.text for s in answers] == ["Lord Hastings Lionel Ismay", "Washington"]
    assert select_answers(ranked, 3, how="max")[0].score == 0.6


def test_alternatives_are_distinct_well_formed_and_close_to_the_best():
    a, b = _rp(NATO, 0, "a"), _rp("The first head was Ismay, a general.", 1, "b")
    ranked = [
        _span(a, "Lord Hastings Lionel Ismay", 0.8),
        _span(a, "Lord Hastings Lionel", 0.7),  # overlaps the best answer
        _span(b, "Ismay", 0.65),  # contained in the best answer's text
        _span(a, "Russia and North Korea on the one hand and China", 0.6),  # fragment
        _span(a, "Washington", 0.5),  # kept: distinct, whole, 0.5 >= 0.5 * 0.8
        _span(a, "2024", 0.3),  # too far below the best
    ]
    assert [s.text for s in select_answers(ranked, 5, ratio=0.5)] == ["Lord Hastings Lionel Ismay", "Washington"]
    assert [s.text for s in select_answers(ranked, 1, ratio=0.5)] == ["Lord Hastings Lionel Ismay"]
    # The best answer is kept even when it is not well-formed: only alternatives are filtered.
    assert select_answers(ranked[3:4], 3)[0].text.startswith("Russia")


class _FakeReader(Reader):
    """Always the spans of ``make(passages)``; scores as given."""

    def __init__(self, make, threshold=0.5):
        self.make = make
        self.default_threshold = threshold

    def read(self, question: str, passages: Sequence[RetrievedPassage], top_n: int = 3) -> ReaderOutput:
        spans = self.make(list(passages))
        return ReaderOutput(spans, 1.0 - spans[0].score if spans else 1.0)


def test_pipeline_cites_every_supporting_paragraph(fake_pipeline):
    def make(passages):
        first, second = passages[0], passages[1]
        word = first.paragraph.text.split()[0]
        span = AnswerSpan(first, 0, len(word), 0.9)
        para = second.paragraph.text
        span.supporting = [AnswerSpan(second, 0, len(para.split()[0]), 0.7)]
        return [span]

    fake_pipeline.reader = _FakeReader(make)
    result = fake_pipeline.ask("When was NATO founded?")
    answer = result.answers[0]
    assert len(answer.supporting) == 1
    cited = answer.supporting[0]
    assert cited.paragraph_text == result.passages[1].paragraph.text
    assert cited.paragraph_text[cited.answer_start:cited.answer_end] == cited.paragraph_text.split()[0]
    body = ask_response(result)["answers"][0]
    assert body["supporting"][0]["paragraph_index"] == result.passages[1].paragraph.paragraph_index


def test_abstention_is_plain_language_with_numbers_in_fields(fake_pipeline):
    fake_pipeline.reader = _FakeReader(lambda ps: [AnswerSpan(ps[0], 0, 3, 0.1)], threshold=0.4)
    no = fake_pipeline.ask("Who is the current Secretary General of NATO?").no_answer
    assert no is not None and no.message == "The documents don't say."
    assert no.best_score == 0.1 and no.threshold == 0.4 and no.cause == "below_threshold"
    assert not any(ch.isdigit() for ch in no.message + no.reason)
    fake_pipeline.reader = _FakeReader(lambda ps: [])
    no = fake_pipeline.ask("Who is the current Secretary General of NATO?").no_answer
    assert no.message == "The documents don't say." and no.best_score is None and no.cause == "no_candidate"


def test_the_threshold_can_be_given_per_call(fake_pipeline):
    """Issue 22, item 4: the evaluation harness asks with threshold 0 for one call instead of
    swapping in a copy of the settings; the service's threshold is untouched."""
    fake_pipeline.reader = _FakeReader(lambda ps: [AnswerSpan(ps[0], 0, 3, 0.1)], threshold=0.4)
    question = "Who is the current Secretary General of NATO?"
    settings = fake_pipeline.settings
    [candidate] = fake_pipeline.ask_batch([question], threshold=0.0)
    assert [a.score for a in candidate.answers] == [0.1] and candidate.no_answer is None
    [strict] = fake_pipeline.ask_batch([question], threshold=0.1)
    assert strict.answers, "a score equal to the threshold is answered"
    assert fake_pipeline.ask(question).no_answer.threshold == 0.4 and fake_pipeline.settings is settings
