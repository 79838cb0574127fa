"""Questions over technical documents, derived from their structure (the reader's technical training set).

Each extractor reads one paragraph as the service reads it (``rag.chunking.split_paragraphs``) and
yields ``TechQuestion``s whose answer is a short span of that paragraph's text:

* ``option``: an option term and its description (man pages, info manuals, READMEs): "Which
  option of cut selects only these bytes?" -> ``--bytes=LIST``; "What does -s do?" -> the
  description's first clause;
* ``default``: defaults and units ("The default is eight megabytes (8MB)", "(default: 10 seconds)",
  "defaults to None") of the option, parameter or heading they belong to;
* ``table``: a table's row and column headers -> the cell;
* ``definition``: "X is a Y" sentences and a man page's NAME line ("cut - remove sections ...");
* ``faq``: a question heading or item and the first sentence that answers it.

Wordings are drawn from several templates per kind, rarely in the text's own word order, and
now and then terse ("default port for X?"), as users type them.  Every question also gets a
second wording, ``question_unseen``, from templates no training question uses: documents held
out for calibration are asked in those, so the threshold is fitted on wordings the reader has
not learnt (the first technical run, calibrated on its training templates, fitted a threshold
that real users' wordings fell under: 37 eval/realdocs abstentions against 22, eval/RESULTS.md).
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

# An option term at the start of a line: "-b, --bytes=LIST", "--complement", "-n NUM", "-z".
OPTION_TERM = re.compile(
    r"^[ \t]*(?P<term>-{1,2}[A-Za-z0-9?][\w.-]*(?:[= ](?:[A-Z][A-Z0-9_.-]*|<[^>\s]+>|\[[^\]\s]+\]))?"
    r"(?:,\s+-{1,2}[A-Za-z0-9?][\w.-]*(?:[= ](?:[A-Z][A-Z0-9_.-]*|<[^>\s]+>|\[[^\]\s]+\]))?)*)"
    r"(?P<sep>[ \t]*\n|[ \t]{2,}|\s(?=[a-z]))",
    re.MULTILINE,
)
SINGLE_OPTION = re.compile(r"-{1,2}[A-Za-z0-9?][\w.-]*(?:[= ](?:[A-Z][A-Z0-9_.-]*|<[^>\s]+>|\[[^\]\s]+\]))?")
_UNIT = r"(?:\s(?:seconds?|secs?|minutes?|mins?|hours?|days?|milliseconds?|ms|bytes?|kilobytes?|megabytes?|gigabytes?|[kKMGT]i?B|lines?|characters?|columns?|percent|%|bits?|blocks?|pages?|times|entries|connections))?"
_VALUE = r"(?P<value>(?:\"[^\"\n]{1,40}\"|'[^'\n]{1,40}'|`[^`\n]{1,40}`|[\w./:+-]*\w)" + _UNIT + r"(?:\s\([\w.]+\))?)"
DEFAULT_PATTERNS = [
    re.compile(r"\b[Tt]he default(?: value| setting)?(?: for \S+)? is (?:typically |usually |currently )?" + _VALUE),
    re.compile(r"\b[Dd]efaults? to " + _VALUE),
    re.compile(r"\(\s*[Dd]efault(?: is|:|=)\s*" + _VALUE + r"\s*\)"),
    re.compile(r"\b[Dd]efault(?: value)?: " + _VALUE),
    re.compile(r"\bby default,? (?:it is |this is |is )?(?:set to )?" + _VALUE),
    re.compile(r"\b" + _VALUE + r" is the default\b"),
    re.compile(r"\b" + _VALUE + r" \(the default\)"),
]
DEFINITION = re.compile(r"(?:^|(?<=[.!?]\s))(?P<subject>(?:The |An? )?[\w.+-]+(?: [\w.+-]+){0,3}) (?P<verb>is|are) (?P<value>(?:an?|the) [^.;:!?()]{6,120})")
NAME_LINE = re.compile(r"^(?P<names>[\w.+-]+(?:, [\w.+-]+)*) \\?[-–—] (?P<value>.{6,160})$")
_WORDS = re.compile(r"\S+")
_BAD_VALUE = frozenset("is the a an to be set this that it not used value in on at of for and or with by from as if when".split())
# Words that make a poor subject for "What is X?" ("If the class found", "This again").
_BAD_SUBJECT = frozenset("if when this that it there which again each all one its their such what where how then value "
                         "so also here these those both either neither".split())
_DANGLING = frozenset("a an the of in on at to for by with from and or as than that which".split())


@dataclass(frozen=True)
class TechQuestion:
    question: str
    answer_start: int
    answer_text: str
    kind: str  # option | option_desc | default | table | definition | name | faq
    subject: str = ""  # the option, parameter, row or term the question is about (hard negatives swap it)
    question_unseen: str = ""  # the same question in a wording no training question uses


def clause(text: str, max_words: int = 14) -> str:
    """The first clause of a description: up to ';', '.', ':' or ``max_words`` words."""
    m = re.match(r"[^;:\n]*?(?=[.;:](?:\s|$)|\n|$)", text)
    part = (m.group(0) if m else text).strip().rstrip(",")
    words = part.split()
    return part if len(words) <= max_words else ""


def third_person(phrase: str) -> str:
    """'select only these bytes' -> 'selects only these bytes' (the first word as a verb)."""
    first, _, rest = phrase.partition(" ")
    low = first.lower()
    if low in ("do",):
        verb = "does"
    elif low in ("be",):
        verb = "is"
    elif low.endswith(("s", "x", "z", "ch", "sh")):
        verb = first + "es"
    elif low.endswith("y") and len(low) > 2 and low[-2] not in "aeiou":
        verb = first[:-1] + "ies"
    else:
        verb = first + "s"
    return (verb + " " + rest).strip()


def _looks_verbal(phrase: str) -> bool:
    first = phrase.split()[0].lower() if phrase.split() else ""
    return first.isalpha() and first not in ("a", "an", "the", "this", "if", "when", "for", "with", "in", "on", "see") \
        and not first.endswith(("ed", "ly", "ing"))


def _pick(rng: random.Random, templates: list[str], unseen: list[str], **slots: str) -> tuple[str, str]:
    """(a wording from ``templates``, one from ``unseen``: the held-out documents' wordings)."""
    lower = rng.random() < 0.15  # users do not always capitalise
    out = []
    for choices in (templates, unseen):
        q = re.sub(r"\s+", " ", rng.choice(choices).format(**slots)).strip()
        out.append(q[0].lower() + q[1:] if lower else q)
    return out[0], out[1]


def _tool_phrase(tool: str, rng: random.Random) -> str:
    return rng.choice([f" of {tool}", f" in {tool}", f" for {tool}", ""]) if tool else ""


def option_questions(text: str, tool: str, rng: random.Random) -> Iterator[TechQuestion]:
    for m in OPTION_TERM.finditer(text):
        term_start = m.start("term")
        desc_start = m.end()
        desc_end = text.find("\n", desc_start)
        desc_end = len(text) if desc_end < 0 else desc_end
        desc = text[desc_start:desc_end].strip()
        options = list(SINGLE_OPTION.finditer(m.group("term")))
        if not desc or not options:
            continue
        # The long form with its argument is the usual answer; the short form a third of the time.
        chosen = options[-1] if rng.random() < 0.67 else options[0]
        ans_start = term_start + chosen.start()
        answer = text[ans_start: term_start + chosen.end()]
        first = re.sub(r"^(?:[Tt]o|[Ww]ill) ", "", clause(desc))
        tp = _tool_phrase(tool, rng)
        if first and len(first.split()) >= 2 and _looks_verbal(first):
            plain = first[0].lower() + first[1:]
            q, unseen = _pick(rng, ["Which option{tp} {verbs}?", "What flag{tp} {verbs}?", "How do I {plain}{tp}?",
                            "Which command-line switch {verbs}?", "what option do I use to {plain}", "Option to {plain}{tp}?",
                            "To {plain}, which option should be given{tp}?"],
                          ["Is there a switch{tp} to {plain}?", "I want to {plain}{tp}. What option do I need?",
                           "Which argument {verbs}?", "How can I {plain}{tp}?", "Which parameter{tp} {verbs}?",
                           "what's the flag to {plain}"], tp=tp, verbs=third_person(plain), plain=plain)
            yield TechQuestion(q, ans_start, answer, "option", answer, unseen)
        if first and len(first.split()) >= 2:
            d_start = text.index(first, desc_start)
            name = text[term_start + options[0].start(): term_start + options[0].end()].split("=")[0].split(" ")[0]
            q, unseen = _pick(rng, ["What does {o} do{tp}?", "What is the {o} option for?", "What does the {o} flag{tp} do?",
                                    "Purpose of {o}{tp}?", "What happens when {o} is given{tp}?", "{o}: what does it do?"],
                              ["What is {o} used for{tp}?", "Explain the {o} option{tp}.", "What effect does {o} have?",
                               "{o} means what?", "Tell me what {o} does{tp}."], o=name, tp=tp)
            yield TechQuestion(q, d_start, first, "option_desc", name, unseen)


def _subject_before(text: str, pos: int, section: str, previous: str) -> str:
    """What a default belongs to: the last option or term line before it, else the previous
    paragraph when that is a term ("shared_buffers (integer)"), else the deepest heading."""
    head = text[:pos]
    terms = [m.group("term") for m in OPTION_TERM.finditer(head + "\n")]
    if terms:
        return SINGLE_OPTION.findall(terms[-1])[-1].split("=")[0].split(" ")[0]
    lines = [line.strip() for line in head.split("\n") if line.strip()]
    for line in reversed(lines[:-1] if lines else []):
        if len(line.split()) <= 4 and not line.endswith("."):
            return re.sub(r"\s*\(\w+\)$", "", line)
    if previous and len(previous.split()) <= 4 and "\n" not in previous and not previous.endswith("."):
        return re.sub(r"\s*\(\w+\)$", "", previous.strip())
    last = section.split(" > ")[-1].strip() if section else ""
    last = re.sub(r"^[\d.]+\s+", "", last)
    return last if 0 < len(last.split()) <= 6 else ""


def default_questions(text: str, section: str, previous: str, rng: random.Random) -> Iterator[TechQuestion]:
    seen: set[int] = set()
    for pattern in DEFAULT_PATTERNS:
        for m in pattern.finditer(text):
            value = m.group("value").rstrip(".,")
            start = m.start("value")
            if start in seen or value.lower() in _BAD_VALUE or len(value) > 45:
                continue
            seen.add(start)
            subject = _subject_before(text, m.start(), section, previous)
            if not subject:
                continue
            q, unseen = _pick(rng, ["What is the default {s}?", "What is the default value of {s}?", "What is {s} set to by default?",
                                    "default {s}?", "If {s} is not given, what value is used?", "By default, what is {s}?",
                                    "What value does {s} take when unset?", "What's the default for {s}?"],
                              ["What's {s} by default?", "Default setting of {s}?", "What does {s} default to?",
                               "Unless changed, what is {s}?", "Which value is {s} given if I leave it out?"], s=subject)
            yield TechQuestion(q, start, value, "default", subject, unseen)


def table_questions(text: str, rng: random.Random, limit: int = 4) -> Iterator[TechQuestion]:
    lines = text.split("\n")
    rows = [(sum(len(x) + 1 for x in lines[:i]), line) for i, line in enumerate(lines) if " | " in line]
    if len(rows) < 3:
        return
    header = rows[0][1].split(" | ")
    picks = rows[1:]
    rng.shuffle(picks)
    for offset, line in picks[:limit]:
        cells = line.split(" | ")
        if len(cells) != len(header) or len(header) < 2:
            continue
        col = rng.randrange(1, len(cells))
        row_name, col_name, cell = cells[0].strip(), header[col].strip(), cells[col]
        if not (row_name and col_name and cell.strip()) or len(cell.split()) > 12 or len(row_name) > 60 or cell.strip() == row_name \
                or re.search(r"[`$;{}\[\]]", row_name + col_name):  # shell or code lines with pipes, not a table
            continue
        start = offset + sum(len(c) + 3 for c in cells[:col])
        assert text[start:start + len(cell)] == cell
        q, unseen = _pick(rng, ["What is the {c} of {r}?", "What {c} does {r} have?", "{r}: {c}?", "For {r}, what is the {c}?",
                                "Which {c} is listed for {r}?", "{c} of {r}?"],
                          ["Tell me the {c} for {r}.", "{r} has which {c}?", "In the table, what {c} goes with {r}?",
                           "What's listed as the {c} of {r}?"], c=col_name.lower() if rng.random() < 0.5 else col_name, r=row_name)
        yield TechQuestion(q, start, cell.strip(), "table", row_name, unseen)


def definition_questions(text: str, rng: random.Random) -> Iterator[TechQuestion]:
    first_line = text.split("\n", 1)[0]
    m = NAME_LINE.match(first_line)
    if m and len(text) < 400:
        tool = m.group("names").split(",")[0]
        value = m.group("value").strip()
        q, unseen = _pick(rng, ["What does {t} do?", "What is {t} used for?", "What is the purpose of the {t} command?",
                                "what is {t}", "Describe {t} briefly."],
                          ["What is {t} for?", "Explain what {t} does.", "what does the {t} tool do",
                           "Give a short description of {t}."], t=tool)
        yield TechQuestion(q, m.start("value"), value, "name", tool, unseen)
        return
    for m in DEFINITION.finditer(text):
        subject = m.group("subject")
        value = re.split(r",? (?:which|that|so that|because|but|and it|when|where|if) ", m.group("value"))[0].rstrip(" ,")
        words = subject.lower().split()
        if len(value.split()) < 2 or len(value.split()) > 16 or set(words) & _BAD_SUBJECT or value.split()[-1].lower() in _DANGLING:
            continue
        s = re.sub(r"^(The|An?) ", "", subject)
        q, unseen = _pick(rng, ["What is {s}?", "What {v} {s}?", "How is {s} described?", "{s} - what is it?", "What kind of thing is {s}?"],
                          ["Can you define {s}?", "Explain {s}.", "What exactly {v} {s}?", "What is meant by {s}?"],
                          s=s, v=m.group("verb"))
        yield TechQuestion(q, m.start("value"), value, "definition", s, unseen)


def faq_questions(text: str, section: str, rng: random.Random) -> Iterator[TechQuestion]:
    heading = section.split(" > ")[-1].strip() if section else ""
    heading = re.sub(r"^\d+[.)]?\s*", "", heading)
    if not heading.endswith("?") or len(heading.split()) < 4:
        return
    m = re.match(r"\s*([^.!?\n]{10,200}[.!?])", text)
    if not m or len(m.group(1).split()) > 30 or re.match(r"(Yes|No)\b", m.group(1)):
        return
    q = heading if rng.random() < 0.5 else re.sub(r"^(How (?:do|can) I|Can I|Is it possible to)\s+", "How to ", heading)
    # Unseen: typed as a search box gets it, lower case and without the question mark.
    unseen = heading[0].lower() + heading[1:].rstrip("?").rstrip()
    yield TechQuestion(q, m.start(1), m.group(1), "faq", heading, unseen)


def paragraph_questions(text: str, section: str, previous: str, tool: str, rng: random.Random) -> list[TechQuestion]:
    """Every question the extractors find in one paragraph (checked: the answer is the span)."""
    out: list[TechQuestion] = []
    for gen in (option_questions(text, tool, rng), default_questions(text, section, previous, rng), table_questions(text, rng),
                definition_questions(text, rng), faq_questions(text, section, rng)):
        for q in gen:
            if text[q.answer_start:q.answer_start + len(q.answer_text)] == q.answer_text and q.answer_text.strip() and len(q.question) < 300:
                out.append(q)
    return out
