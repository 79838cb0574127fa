"""Hard unanswerable questions made by rules from answerable ones, the way SQuAD 2.0's were written.

SQuAD 2.0's crowd workers wrote questions that fit the paragraph but ask for something it does
not say (Rajpurkar et al. 2018, table 2): a changed entity or number, a negation, an antonym, a
mutual-exclusion word ("first" vs "current"), an impossible condition.  Each rule below edits one
answerable question so that the paragraph no longer answers it, and is kept only when the new
word does not occur in the paragraph (so the edited question cannot be matched verbatim):

* ``entity_swap``: a capitalised word the question shares with the paragraph is replaced by one
  from *another paragraph of the same article* (on topic: "Where is NATO's office in Seoul?"
  for a paragraph about the Tokyo office);
* ``number_swap``: a number or year shared with the paragraph is moved by 1-40 ("in 1066?" ->
  "in 1071?");
* ``ordinal_swap``: first / last / current / original / earliest / latest / ... replaced by a
  word that excludes it ("Who was the first Secretary General?" -> "... the current ...");
* ``antonym_swap``: largest/smallest, before/after, won/lost, founded/dissolved, ... (a relation
  the paragraph states turned into one it does not);
* ``negation``: "not" after the question's auxiliary ("Which city was chosen?" -> "Which city
  was not chosen?").

Rules are deterministic given the random generator, so the held-out calibration slice is made
exactly the same way as the training negatives.
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace

_WORD = re.compile(r"\w+", re.UNICODE)
_CAP = re.compile(r"\b[A-Z][a-z]{2,}\b")
_NUMBER = re.compile(r"\b\d{1,4}\b")
_ORDINALS = ("first", "last", "current", "original", "earliest", "latest", "second", "third", "final",
             "previous", "next", "present", "former", "only")
# Each word and its opposite; either direction is used.
_ANTONYMS = dict(
    pair
    for a, b in (
        ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"), ("most", "least"),
        ("oldest", "newest"), ("longest", "shortest"), ("before", "after"), ("north", "south"),
        ("east", "west"), ("won", "lost"), ("win", "lose"), ("founded", "dissolved"), ("built", "demolished"),
        ("opened", "closed"), ("born", "buried"), ("started", "ended"), ("began", "ended"), ("joined", "left"),
        ("increase", "decrease"), ("increased", "decreased"), ("maximum", "minimum"), ("more", "fewer"),
        ("early", "late"), ("earlier", "later"), ("higher", "lower"), ("larger", "smaller"), ("major", "minor"),
        ("allowed", "banned"), ("accepted", "rejected"), ("supported", "opposed"), ("import", "export"),
        ("imported", "exported"), ("buy", "sell"), ("bought", "sold"), ("inside", "outside"), ("upper", "lower"),
    )
    for pair in ((a, b), (b, a))
)
_AUX = re.compile(r"^(\w+(?:\s+\w+)?)\s+(is|are|was|were|has|have|had|can|could|will|would|should|must)\s+(?!not\b)", re.I)
_STOP_CAPS = frozenset("What Which Who Whom Whose When Where Why How The In On At For From By Of And Is Was Are Were Did Does Do".split())


def _context_words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _case_like(word: str, model: str) -> str:
    return word.capitalize() if model[:1].isupper() else word


def _unanswerable(ex, question: str, kind: str):
    return replace(ex, qid=f"{ex.qid}-{kind}", question=question, answer_start=-1, answer_text="", golds=[], kind=kind)


def entity_swap(ex, article_caps: Sequence[str], rng: random.Random):
    """A capitalised word shared with the paragraph -> one of the article's that the paragraph lacks."""
    ctx = _context_words(ex.context)
    spots = [m for m in _CAP.finditer(ex.question) if m.start() > 0 and m.group() not in _STOP_CAPS and m.group().lower() in ctx]
    pool = [w for w in article_caps if w.lower() not in ctx and w not in _STOP_CAPS]
    if not spots or not pool:
        return None
    m = rng.choice(spots)
    new = rng.choice(pool)
    return _unanswerable(ex, ex.question[: m.start()] + new + ex.question[m.end():], "entity_swap")


def number_swap(ex, rng: random.Random):
    ctx = _context_words(ex.context)
    spots = [m for m in _NUMBER.finditer(ex.question) if m.group() in ctx]
    if not spots:
        return None
    m = rng.choice(spots)
    value = int(m.group())
    for _ in range(10):
        new = str(value + rng.choice([-1, 1]) * rng.randint(1, max(1, min(40, value // 2))))
        if new not in ctx and not new.startswith("-") and new != m.group():
            return _unanswerable(ex, ex.question[: m.start()] + new + ex.question[m.end():], "number_swap")
    return None


def _word_swap(ex, choices: dict[str, Sequence[str]], rng: random.Random, kind: str):
    ctx = _context_words(ex.context)
    spots = [m for m in _WORD.finditer(ex.question) if m.group().lower() in choices]
    rng.shuffle(spots)
    for m in spots:
        options = [w for w in choices[m.group().lower()] if w not in ctx]
        if options:
            new = _case_like(rng.choice(options), m.group())
            return _unanswerable(ex, ex.question[: m.start()] + new + ex.question[m.end():], kind)
    return None


def ordinal_swap(ex, rng: random.Random):
    return _word_swap(ex, {w: [o for o in _ORDINALS if o != w] for w in _ORDINALS}, rng, "ordinal_swap")


def antonym_swap(ex, rng: random.Random):
    return _word_swap(ex, {a: [b] for a, b in _ANTONYMS.items()}, rng, "antonym_swap")


def negation(ex, rng: random.Random):
    """"not" after the auxiliary of a question that has one (only when the paragraph has no negation)."""
    if re.search(r"\b(not|never|no)\b|n't", ex.context.lower()):
        return None  # the paragraph may say what was not the case: the negated question could be answerable
    m = _AUX.match(ex.question)
    if m is None:
        return None
    return _unanswerable(ex, ex.question[: m.end()] + "not " + ex.question[m.end():], "negation")


HARD_KINDS = ("entity_swap", "number_swap", "ordinal_swap", "antonym_swap", "negation")


def article_capitals(article: Sequence) -> list[str]:
    """Capitalised words of the article's paragraphs (the on-topic pool for ``entity_swap``)."""
    # Only words capitalised mid-sentence ("... the Tokyo office"): names, not "But" or "Team".
    mid = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{2,}\b")
    words = {w for c in dict.fromkeys(e.context for e in article) for w in mid.findall(c)}
    return sorted(w for w in words if w not in _STOP_CAPS)


def hard_negative(ex, article_caps: Sequence[str], rng: random.Random):
    """The first rule (in a random order, rarer rules first) that applies to ``ex``, or None."""
    rare = ["ordinal_swap", "antonym_swap", "number_swap"]
    rng.shuffle(rare)
    common = ["entity_swap", "negation"]
    rng.shuffle(common)
    makers = {
        "entity_swap": lambda: entity_swap(ex, article_caps, rng),
        "number_swap": lambda: number_swap(ex, rng),
        "ordinal_swap": lambda: ordinal_swap(ex, rng),
        "antonym_swap": lambda: antonym_swap(ex, rng),
        "negation": lambda: negation(ex, rng),
    }
    for kind in rare + common:
        neg = makers[kind]()
        if neg is not None:
            return neg
    return None
