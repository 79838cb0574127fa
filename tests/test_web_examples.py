"""Example questions on the web page (GET /web/examples): questions a person would ask of the
document, made from a sentence's subject and a fact in it, or a topical heading; never
"What is <bare proper name>?" (issue 21: "What is South Korea?")."""
from __future__ import annotations

import re

import pytest

from rag.api.web_examples import example_questions, fact_question
from rag.types import Paragraph


@pytest.mark.parametrize(("sentence", "question"), [
    ("South Korea, formally the Republic of Korea (ROK), is not a North Atlantic Treaty Organization (NATO) member.",
     "What is South Korea formally called?"),
    ("The North Atlantic Treaty Organization was founded in 1949 by twelve countries.", "When was the North Atlantic Treaty Organization founded?"),
    ("The lighthouse was designed by Robert Stevenson.", "Who designed the lighthouse?"),
    ("The alliance was created to keep the peace in Europe.", "Why was the alliance created?"),
    ("Due partly to their sacrifice, South Korea has become a leading economic power.", None),  # a lead-in clause: no subject
    ("South Korea has become a leading economic and cultural power.", "What has South Korea become?"),
    ("The Republic of Korea, as a key partner to NATO, has imposed sanctions on Russia.", "What has the Republic of Korea imposed?"),
    ("The Yoon administration has branded South Korea a Global Pivot State.", "What has the Yoon administration branded South Korea?"),
    ("The alliance is a pact of collective defence.", "What is the alliance?"),
    # a bare name with "is", or a fact with nothing to ask for: no question
    ("South Korea is a peninsula state.", None),
    ("Russia's invasion of Ukraine is no longer a European problem.", None),
    ("NATO’s strategic pivot has become crucial for global stability.", None),
    ("It was founded in 1949.", None),
    ("The summit has moved to Washington.", None),
])
def test_a_sentence_gives_the_question_its_fact_answers(sentence, question):
    assert fact_question(sentence) == question


def _paragraphs(document_id: str, texts: list[tuple[str, str]]) -> list[Paragraph]:
    out, start = [], 0
    for i, (section, text) in enumerate(texts):
        out.append(Paragraph(document_id, i, text, start, start + len(text), section=section))
        start += len(text) + 2
    return out


def test_examples_mix_topical_headings_and_facts_and_skip_generic_headings():
    paragraphs = _paragraphs("guide", [
        ("", "The harbour guide covers the port. The harbour was built in 1820 by the town council."),
        ("Introduction", "Introduction\nThe lighthouse keeper of Port Ellery was Miriam Casaubon."),
        ("Tides and Currents", "Tides and Currents\nThe tide turns twice a day."),
        ("Conclusion", "Conclusion\nPort Ellery, officially Ellery Haven, is a small port."),
    ])
    questions = [e["question"] for e in example_questions({"guide": 500}, paragraphs)]
    assert questions == ["What are Tides and Currents?", "When was the harbour built?", "What is Port Ellery officially called?"]


def test_no_example_asks_what_a_bare_name_is(fake_pipeline):
    index = fake_pipeline.index
    sizes = index.largest_documents(16)
    examples = example_questions(sizes, [p for d in sizes for p in index.paragraphs_of(d)])
    questions = [e["question"] for e in examples]
    assert len(questions) == 4 and {e["document_id"] for e in examples} == set(sizes)
    headings = {p.section.split(" > ")[-1] for d in sizes for p in index.paragraphs_of(d)}
    for question in questions:
        named = re.fullmatch(r"What (?:is|are|was|were) (.+)\?", question)
        if named and named.group(1) not in headings:  # a topical heading is asked about as written
            assert not all(w[:1].isupper() or w in ("of", "and") for w in named.group(1).split()), question
    assert "What is South Korea?" not in questions and "What is South Korea formally called?" in questions
