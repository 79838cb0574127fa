"""List questions get the whole coordinated list (issue 25)."""
from __future__ import annotations

import pytest

from rag.reading.list_answers import asks_for_several, widen_to_list

I4 = "NATO works with partners in the Indo-Pacific Four: Australia, Japan, New Zealand and South Korea. They meet yearly."


def _widen(question: str, text: str, item: str) -> str:
    start = text.index(item)
    s, e = widen_to_list(question, text, start, start + len(item))
    return text[s:e]


@pytest.mark.parametrize("question", [
    "Which countries are the Indo-Pacific Four?", "What countries make up the Indo-Pacific Four?",
    "What are the Indo-Pacific Four?", "Which two scripting languages come with SQLite built-in?",
    "Name the members of the Indo-Pacific Four.", "Who were the founders?",
])
def test_plural_questions_ask_for_several(question):
    assert asks_for_several(question)


@pytest.mark.parametrize("question", [
    "What is the capital of Australia?", "Which country hosted the summit?", "Which of the countries joined last?",
    "What class does the guide use?", "Which process handles it?", "What status does rsync return?",
])
def test_singular_questions_do_not(question):
    assert not asks_for_several(question)


def test_an_item_widens_to_the_whole_list_and_offsets_slice_the_text():
    for item in ("South Korea", "Japan", "Australia", "New Zealand"):
        assert _widen("Which countries are the Indo-Pacific Four?", I4, item) == "Australia, Japan, New Zealand and South Korea"


def test_two_items_joined_by_or_and_lowercase_items():
    text = "More complex analysis can be done using simple scripts written in Tcl or Python (both of which come with SQLite built-in)."
    assert _widen("Which two scripting languages come with SQLite built-in?", text, "Python") == "Tcl or Python"
    text = "SQLite is a good fit for use in cellphones, set-top boxes, televisions and game consoles."
    assert _widen("Which devices are a good fit for SQLite?", text, "televisions") == "cellphones, set-top boxes, televisions and game consoles"


def test_no_list_or_a_singular_question_leaves_the_span():
    assert _widen("Which country is in the Indo-Pacific Four?", I4, "Japan") == "Japan"
    text = "The summit was held in Washington, which hosted it in 1949."
    assert _widen("Which cities hosted the summit?", text, "Washington") == "Washington"
    # Clauses are not items: the sentence goes on past the comma with lower-case words.
    text = "Rsync copies files, and it can delete extraneous files on the destination."
    assert _widen("What are the features of rsync?", text, "files") == "files"
