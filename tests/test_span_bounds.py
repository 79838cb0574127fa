"""Clean answer spans (issue 19, requirement 4): sentence and quote boundaries, whole option and value tokens."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.reading.span_bounds import clean_candidates, clean_span, crosses_sentence

# rsync(1), as the .txt parser renders a man page: the option term, then its description.
RSYNC = (
    "-n, --dry-run\nThis makes rsync perform a trial run that doesn't make any changes (and produces "
    "mostly the same output as a real run).\n\n"
    "--bwlimit=RATE\nThis option allows you to specify the maximum transfer rate for the data sent over "
    "the socket, specified in units per second. The RATE value can be suffixed with a string to indicate "
    "a size multiplier, and may be a fractional value (e.g. \"--bwlimit=1.5m\")."
)
# GNU grep's info manual: options in ‘’ quotes.
GREP = (
    "‘-P’ ‘--perl-regexp’\nInterpret patterns as Perl-compatible regular expressions (PCREs). "
    "PCRE support is here to stay, but consider this option experimental when combined with the ‘-z’ option."
)
# A key=value reference (fancyvrb's parameters) and a mode list with ";"-joined names.
CONFIG = (
    "boxwidth (dimension or auto) : width of the box (Default: auto). Use \\begin{BVerbatim}[boxwidth=2cm] "
    "for a fixed width. Valid cache modes are loose;strict, none and full; the default is none. "
    "object_pairs_hook (default: None)."
)
ZLIB = (
    "The name zlib is short for a compression library; the FAQ says the gz functions provide "
    "\"extended input/output\". It is a library/API for compressed files in the gzip format."
)
# SQuAD-style prose: answers a reader gets right must come out unchanged.
PROSE = (
    "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in the 10th "
    "and 11th centuries gave their name to Normandy, a region in France. Their leader, Rollo, swore "
    "fealty to King Charles III of West Francia. The team's kicker, Ted Ginn Jr. of Ohio, scored in the "
    "U.S. Army game; the stadium cost $5.2 billion and seats 68,500 people."
)


def _clean(text: str, phrase: str, nth: int = 0) -> str:
    start = -1
    for _ in range(nth + 1):
        start = text.index(phrase, start + 1)
    s, e = clean_span(text, start, start + len(phrase))
    return text[s:e]


@pytest.mark.parametrize("text, span, expected", [
    (RSYNC, "RATE", "--bwlimit=RATE"),  # the option's argument stands for the option
    (RSYNC, "bwlimit", "--bwlimit=RATE"),
    (RSYNC, "bwlimit=RATE\nThis option", "--bwlimit=RATE"),  # and stops at the line break
    (RSYNC, "n, --dry", "-n, --dry-run"),
    (RSYNC, "dry-run", "--dry-run"),
    (GREP, "‘-P", "-P"),  # an opening quote without its partner
    (GREP, "‘-P’", "-P"),  # quotes around the whole answer
    (GREP, "z’ option.", "-z"),
    (CONFIG, "2cm", "2cm"),  # the value of key=value is an answer by itself
    (CONFIG, "boxwidth", "boxwidth"),  # and so is the key
    (CONFIG, "width=2cm", "boxwidth=2cm"),  # cut inside the pair: the whole pair
    (CONFIG, "loose", "loose;strict"),  # a mode name holding ";"
    (CONFIG, "strict, none", "loose;strict, none"),
    (CONFIG, "None).", "None"),
    (CONFIG, "(Default: auto", "(Default: auto)"),  # a short parenthetical is closed
    (ZLIB, "extended input/output\". It is a library/API", "extended input/output"),
    (ZLIB, "input", "input/output"),
    (ZLIB, "short for a compression library;", "short for a compression library"),
])
def test_technical_spans_are_cleaned(text, span, expected):
    assert _clean(text, span) == expected


@pytest.mark.parametrize("span", [
    "Normans", "Norman: Nourmands", "Nourmands", "10th and 11th centuries", "Normandy", "France", "Rollo",
    "King Charles III of West Francia", "Ted Ginn Jr.", "U.S. Army", "$5.2 billion", "68,500",
    "Normans (Norman: Nourmands; French: Normands; Latin: Normanni)",
])
def test_prose_answers_are_left_alone(span):
    assert _clean(PROSE, span) == span


@pytest.mark.parametrize("span, expected", [
    ("Normanni) were the people", "Normanni"),  # a closing bracket the span does not open
    ("West Francia. The team", "West Francia"),  # a sentence boundary
    ("France.", "France"),
    ("Nourmands;", "Nourmands"),
    ("Jr. of Ohio", "Jr. of Ohio"),  # an abbreviation is no sentence end
    ("5.2 bil", "5.2 billion"),  # cut inside a word
    ("68,5", "68,500"),  # and inside a number
])
def test_prose_span_errors_are_fixed(span, expected):
    assert _clean(PROSE, span) == expected


def test_apostrophes_are_not_quotes():
    text = "It sets the library’s loggers. Users’ handlers come from the application."
    assert _clean(text, "library’s loggers") == "library’s loggers"
    assert _clean(text, "Users’ handlers") == "Users’ handlers"


def test_quoted_items_get_their_outer_quotes():
    text = 'The episodes "Blue Harvest" and "420" aired in 2007.'
    assert _clean(text, 'Blue Harvest" and "420') == '"Blue Harvest" and "420"'


def test_crossing_detection_ignores_item_numbers():
    text = "What is its ECCN?\n\nzlib is classified as EAR99.\n\n44. Can you sign these documents?"
    start = text.index("EAR99")
    assert not crosses_sentence(text, start, text.index("44") + 2)
    assert _clean(text, "EAR99.\n\n44") == "EAR99"
    assert crosses_sentence(text, text.index("ECCN"), start + 5)


@dataclass
class Cand:
    start: int
    end: int
    score: float


def test_candidates_drop_sentence_crossings_and_keep_the_best_of_equal_spans():
    text = ZLIB
    i = text.index("extended")
    crossing = Cand(i, text.index("library/API") + 11, 20.0)
    quoted = Cand(i - 1, i + len("extended input/output") + 1, 19.0)  # "extended input/output" with quotes
    bare = Cand(i, i + len("extended input/output"), 18.0)
    out = clean_candidates(text, [crossing, quoted, bare])
    assert [(text[c.start:c.end], c.score) for c in out] == [("extended input/output", 19.0)]
    assert crossing.start == i and quoted.start == i - 1  # the inputs are not modified


def test_candidates_that_all_cross_are_cut_not_dropped():
    text = ZLIB
    i = text.index("extended")
    out = clean_candidates(text, [Cand(i, len(text) - 1, 5.0)])
    assert [text[c.start:c.end] for c in out] == ["extended input/output"]


_ALPHABET = st.sampled_from(list("ab Z9 .,;:!?-=/_()[]{}\"'“”‘’\n") + ["--x", "k=v", ". The ", "e.g. ", "Jr. "])


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, min_size=1, max_size=40).map("".join), st.data())
def test_clean_spans_slice_the_text_and_are_never_empty(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    s, e = clean_span(text, start, end)
    assert 0 <= s < e <= len(text)
    assert text[s:e]
    if any(ch.isalnum() for ch in text[start:end]):
        assert any(ch.isalnum() for ch in text[s:e])
    out = clean_candidates(text, [Cand(start, end, 1.0), Cand(s, e, 0.5)])
    assert out and all(0 <= c.start < c.end <= len(text) for c in out)
    assert len({(c.start, c.end) for c in out}) == len(out)


def test_predict_pairs_returns_clean_spans():
    """The hook: the reader's raw best span crosses a closing quote into the next sentence."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import string
    from types import SimpleNamespace

    from transformers import BertTokenizerFast

    from rag.reading.span import encode_pairs, predict_pairs

    chars = string.ascii_lowercase + string.digits + string.punctuation.replace("#", "")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(chars) + [f"##{c}" for c in chars]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    question = "What does the name stand for?"
    enc = encode_pairs(tokenizer, [question], [ZLIB], 384, 128)
    offsets, ids = enc["offset_mapping"][0], enc.sequence_ids(0)

    def token_at(char: int, side: int) -> int:
        return next(t for t, (o, sid) in enumerate(zip(offsets, ids)) if sid == 1 and o[side] == char)

    i = ZLIB.index("extended")
    start_logits = torch.zeros(1, len(offsets))
    end_logits = torch.zeros(1, len(offsets))
    start_logits[0, token_at(i, 0)] = 10.0
    end_logits[0, token_at(ZLIB.index("library/API") + 7, 1)] = 10.0  # "... It is a library"
    end_logits[0, token_at(i + len("extended input/output"), 1)] = 9.0

    def model(**batch):
        n = batch["input_ids"].shape[1]
        return SimpleNamespace(start_logits=start_logits[:, :n], end_logits=end_logits[:, :n])

    cands = predict_pairs(model, tokenizer, [question], [ZLIB], max_answer_tokens=64, spans_per_window=3)[0]
    best = cands[0]
    assert ZLIB[best.start:best.end] == "extended input/output"
    assert best.score == pytest.approx(19.0)
