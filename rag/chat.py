"""Chat on top of the pipeline: follow-up rewriting, and the cited chat answer built from a QAResult.

No HTTP here: ``rag.api.routes_chat`` (the OpenAI-compatible API) and the web page use these
dataclasses.  Everything is deterministic; no language model is involved.

Follow-up rewriting (:func:`rewrite_question`)
----------------------------------------------
The latest user message is the question.  It is made self-contained from the earlier turns by
these rules, applied in order:

1. A leading connective ("and", "but", "so", "also", "then", "ok", "what about", "how about")
   is dropped and remembered.
2. The first question is left as it is.  So is a question whose pronouns (below) all come after
   something it names itself ("What did Yoon say about his country?"), or that has no pronoun
   but names something (a *named span*: a run of capitalised words or numbers such as "NATO",
   "South Korea" or "Republic of Korea", not counting a capitalised question word at the start).
3. A question that leans on "it", "its", "they", "them", "their" ("thing" pronouns, looked for
   first) or "he", "him", "his", "she", "her" ("person" pronouns) gets the *subject* of the
   previous user question (in its own rewritten form, so chains of follow-ups work):

   * thing: that question's first named span ("Who was NATO's first Secretary General?" ->
     "NATO"), else the words after "what/who is/was/are/were" ("What is hybrid warfare?" ->
     "hybrid warfare");
   * person: when that question asked "who ...", the answer the assistant gave (the first line
     of its reply, before its first marker "[1]"); else the words after "who is/was"
     ("NATO's first Secretary General"); else its first named span.

   The first such pronoun is replaced by the subject ("its"/"his"/"their" by "<subject>'s"); later
   ones then read naturally ("where did it hold its summit?" -> "Where did NATO hold its summit?").
4. A question with no such pronoun is *elliptical* when it began with a connective, or when it is a
   fragment of at most four words without a verb like "is", "was", "did" ("the headquarters?",
   "when?"): the subject is appended, as "of <subject>" after a noun phrase that starts with an
   article, else in parentheses.  Other questions are self-contained.
5. When no subject can be found, the question is left as it is.

The result records the rule that fired, so the rewriting is visible in every response.

Every step is linear in the length of the history: no pattern here can backtrack over an
unbounded run of text (issue 11: a lazy ``(.+?)[\\s?.!]*$`` took 7.1 s on a 40,000-space
message).  The HTTP edge also bounds the history (``RAG_MAX_CHAT_MESSAGES``, ``RAG_MAX_CHAT_CHARS``).

Chat content is Markdown for chat front ends; text quoted from documents (answers, sentences,
titles) has ``& < > [ ]`` written as character references (:func:`markdown_safe`), so document
HTML, links and images are shown as text rather than rendered or fetched.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rag.abstention import NO_ANSWER_MESSAGE, detail_of
from rag.followups import other_referents
from rag.types import Citation, QAResult

_CONNECTIVES = ("and what about", "and how about", "what about", "how about", "and", "but", "so", "also", "then", "okay", "ok")
_THING_PRONOUNS = {"it": False, "its": True, "they": False, "them": False, "their": True}
_PERSON_PRONOUNS = {"he": False, "him": False, "his": True, "she": False, "her": None}  # None: decided by context
# Capitalised words that start questions without naming anything.
_STARTERS = set(
    "who whom whose what when where why how which is was are were do does did can could will would should shall may "
    "might must has have had tell give list show explain describe name find please i in on at for from of the a an "
    "and but so also then ok okay about according".split()
)
_AUXILIARIES = set("is was are were be been am do does did has have had can could will would should shall may might must".split())
_JOINERS = {"of", "the", "de", "for", "van", "von", "der", "du", "la", "le", "del"}
_ARTICLES = {"the", "a", "an"}
# Words after "her" that make it an object pronoun ("who appointed her to ...") rather than a possessive.
_AFTER_OBJECT_HER = {"to", "in", "at", "of", "for", "with", "by", "on", "from", "and", "or", "as", "about", "after", "before"}
_TOKEN = re.compile(r"[\w][\w.’'\-]*")
_POSSESSIVE = re.compile(r"(?:['’]s|['’])$")
# No leading \s*: searched on an unbounded line, "\s*\[" retries every whitespace run to its end
# (quadratic); the answer before the marker is stripped instead.
_MARKER = re.compile(r"\[\d+\]")
# Only the fixed prefix is a pattern; the subject after it is cut with str methods (linear).
_COPULA = re.compile(r"\s*(who|what)\s+(?:is|was|are|were|has been)\s+", re.IGNORECASE)
_MARKDOWN_ACTIVE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "&#91;", "]": "&#93;"})


@dataclass(frozen=True)
class ChatTurn:
    role: str  # "user" | "assistant" | "system" | ...
    content: str


@dataclass(frozen=True)
class Rewrite:
    original: str  # the latest user message
    question: str  # what is retrieved and read: self-contained
    rule: str  # "first question" | "self-contained" | "pronoun" | "ellipsis" | "no subject"
    subject: str | None = None
    # Other readings of "it" (the previous question's event, its answer: rag/followups.py), asked
    # beside this one; the best-answered is kept.
    alternatives: tuple[Rewrite, ...] = ()

    def readings(self) -> tuple[Rewrite, ...]:
        return (self, *self.alternatives)

    @property
    def changed(self) -> bool:
        return self.question != self.original.strip()


# ----------------------------------------------------------------------------- rewriting
def named_spans(question: str) -> list[str]:
    """Runs of capitalised words (joined by "of", "the", ...) in order; a possessive ends a run."""
    return [text for text, _ in _named(question)]


def _named(question: str) -> list[tuple[str, int]]:
    """(named span, offset of its first character)."""
    spans: list[tuple[str, int]] = []
    current: list[str] = []
    pending: list[str] = []  # joiners seen after a capitalised word
    first = 0

    def close() -> None:
        if current:
            spans.append((" ".join(current), first))
        current.clear()
        pending.clear()

    for position, match in enumerate(_TOKEN.finditer(question)):
        word = match.group(0).rstrip(".") if match.group(0).count(".") == 1 else match.group(0)
        bare = _POSSESSIVE.sub("", word)
        capital = bare[:1].isupper() or bare[:1].isdigit()
        if capital and ((position == 0 and bare.lower() in _STARTERS) or bare == "I"):
            capital = False
        if capital:
            if not current:
                first = match.start()
            current.extend(pending)
            pending.clear()
            current.append(bare)
            if bare != word:  # "NATO's": the owner is a complete name
                close()
        elif current and bare.lower() in _JOINERS and not pending:
            pending.append(bare)
        else:
            close()
    close()
    return spans


def _strip_connective(question: str) -> tuple[str, bool]:
    text = question.strip()
    lowered = text.lower()
    for connective in _CONNECTIVES:
        if lowered.startswith(connective) and (len(text) == len(connective) or not text[len(connective)].isalnum()):
            rest = text[len(connective) :].lstrip(" ,;:-–—….")
            if rest:
                return rest, True
    return text, False


def _pronouns(question: str) -> tuple[str | None, list[re.Match]]:
    """The pronoun class the question leans on ("thing" or "person") and the matches."""
    words = list(re.finditer(r"\b[A-Za-z]+\b", question))
    things = [m for m in words if m.group(0).lower() in _THING_PRONOUNS]
    people = [m for m in words if m.group(0).lower() in _PERSON_PRONOUNS]
    if things:
        return "thing", things
    if people:
        return "person", people
    return None, []


def _possessive(match: re.Match, question: str) -> bool:
    word = match.group(0).lower()
    table = _THING_PRONOUNS if word in _THING_PRONOUNS else _PERSON_PRONOUNS
    if table[word] is not None:
        return bool(table[word])
    following = re.match(r"\s+([A-Za-z]+)", question[match.end() :])
    return bool(following) and following.group(1).lower() not in _AFTER_OBJECT_HER


def _answer_of(reply: str | None) -> str | None:
    """The answer an assistant reply of ours starts with: its first line, before the first marker."""
    if not reply or reply.startswith(NO_ANSWER_MESSAGE):
        return None
    first = reply.strip().splitlines()[0] if reply.strip() else ""
    marker = _MARKER.search(first)
    answer = html.unescape(first[: marker.start()].strip()) if marker else ""  # content is markdown_safe
    return answer if answer and len(answer.split()) <= 12 else None


def _copula_subject(previous: str) -> tuple[str, str] | None:
    """("who" | "what", the words after "who/what is/was/are/were/has been"), trailing ``?.!`` and
    spaces removed; None when there are none or they run past a line break."""
    match = _COPULA.match(previous)
    if match is None:
        return None
    end = len(previous)
    while end > match.end() and (previous[end - 1].isspace() or previous[end - 1] in "?.!"):
        end -= 1
    subject = previous[match.end() : end]
    if not subject or "\n" in subject:
        return None
    return match.group(1).lower(), subject


def _subject(kind: str, previous: str, previous_reply: str | None) -> str | None:
    spans = named_spans(previous)
    copula = _copula_subject(previous)
    if kind == "person":
        if re.match(r"\s*who\b", previous, re.IGNORECASE) and (answer := _answer_of(previous_reply)):
            return answer
        if copula and copula[0] == "who":
            return copula[1]
    if spans:
        return spans[0]
    return copula[1] if copula else None


def _finish(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(("?", ".", "!")) else text + "?"


def rewrite_one(question: str, previous: str | None, previous_reply: str | None = None) -> Rewrite:
    """Rewrite ``question`` given the previous (already self-contained) user question."""
    original = question.strip()
    if previous is None:
        return Rewrite(question, original, "first question")
    body, had_connective = _strip_connective(original)
    kind, matches = _pronouns(body)
    names = [offset for _, offset in _named(body)]
    if names and (kind is None or names[0] < matches[0].start()):
        return Rewrite(question, original, "self-contained")
    if kind is None:
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", body)]
        fragment = len(words) <= 4 and not _AUXILIARIES.intersection(words)
        if not words or not (had_connective or fragment):
            return Rewrite(question, original, "self-contained")
    subject = _subject(kind or "thing", previous, previous_reply)
    if subject is None:
        return Rewrite(question, original, "no subject")
    if kind is None:
        stem = body.rstrip("?!. ")
        joined = f"{stem} of {subject}" if stem.split()[0].lower() in _ARTICLES else f"{stem} ({subject})"
        return Rewrite(question, _finish(joined), "ellipsis", subject)
    main = Rewrite(question, _finish(_put(body, matches[0], subject)), "pronoun", subject)
    if kind != "thing":
        return main
    others = other_referents(previous, _answer_of(previous_reply), subject)
    return replace(main, alternatives=tuple(Rewrite(question, _finish(_put(body, matches[0], other)), "pronoun", other) for other in others))


def _put(body: str, pronoun: re.Match, subject: str) -> str:
    """``body`` with ``pronoun`` replaced by ``subject`` (or its possessive for "its", "their")."""
    owner = subject if _POSSESSIVE.search(subject) else f"{subject}’s" if "’" in subject else f"{subject}'s"
    return body[: pronoun.start()] + (owner if _possessive(pronoun, body) else subject) + body[pronoun.end() :]


def rewrite_question(history: Sequence[ChatTurn]) -> Rewrite:
    """The latest user message of ``history``, made self-contained (rules in the module docstring)."""
    previous: str | None = None
    reply: str | None = None
    result: Rewrite | None = None
    for turn in history:
        if turn.role == "user":
            result = rewrite_one(turn.content, previous, reply)
            previous, reply = result.question, None
        elif turn.role == "assistant":
            reply = turn.content
    if result is None:
        raise ValueError("the conversation has no user message")
    return result


# ----------------------------------------------------------------------------- answers
def markdown_safe(text: str) -> str:
    """``text`` with the characters that start HTML, links and images in Markdown written as
    character references: rendered, it reads the same; it never becomes markup."""
    return text.translate(_MARKDOWN_ACTIVE)


@dataclass(frozen=True)
class UrlCitation:
    """OpenAI's ``url_citation`` annotation: ``content[start_index:end_index]`` is the marker."""

    start_index: int
    end_index: int
    url: str
    title: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "url_citation", "url_citation": asdict(self)}


@dataclass
class ChatAnswer:
    content: str
    rewrite: Rewrite
    annotations: list[UrlCitation] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)  # the /v1/ask citation objects, marker n -> [n-1]
    answers: list[dict[str, Any]] = field(default_factory=list)  # marker, text, score, context (+ offsets), url
    no_answer: dict[str, Any] | None = None

    @property
    def abstained(self) -> bool:
        return not self.citations


class _Writer:
    """Appends text and records where each citation marker lands."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.annotations: list[UrlCitation] = []

    def text(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def marker(self, n: int, url: str, title: str) -> None:
        label = f"[{n}]"
        self.annotations.append(UrlCitation(self.length, self.length + len(label), url, title))
        self.text(label)


def page_label(pages: list[int]) -> str:
    """"p. 3, " / "pp. 3-4, " for a PDF paragraph, "" for other formats."""
    if not pages:
        return ""
    return f"p. {pages[0]}, " if len(pages) == 1 else f"pp. {pages[0]}-{pages[-1]}, "


def build_chat_answer(
    result: QAResult,
    rewrite: Rewrite,
    paragraph_url: Callable[[Citation], str],
    source_urls: Mapping[str, str] | None = None,
) -> ChatAnswer:
    """The assistant message for ``result``: the answer, its quoted sentence, markers and sources.

    Layout (markers ``[n]`` are annotated, ``n`` is the 1-based position in ``citations``)::

        <best answer> [1]

        > <its quoted sentence> [1]

        Other possible answers: <answer 2> [2]; <answer 3> [3]

        Sources:
        [1] <title>, [p. <page>, ]paragraph <i>: <url>
    """
    if not result.answers:
        no_answer = asdict(result.no_answer) if result.no_answer else None
        message = result.no_answer.message if result.no_answer and result.no_answer.message else NO_ANSWER_MESSAGE
        content = f"{message}\n\nSearched the documents for: {markdown_safe(rewrite.question)}"
        if detail := detail_of(result.no_answer):
            content += f"\nDetails: {markdown_safe(detail)}"
        return ChatAnswer(content, rewrite, no_answer=no_answer)
    source_urls = source_urls or {}
    out = _Writer()
    answers, citations, sources = [], [], []
    for n, answer in enumerate(result.answers, start=1):
        citation = answer.citation
        url = paragraph_url(citation)
        title = citation.title or citation.document_id
        start, end = answer.context_start, answer.context_end
        citations.append(asdict(citation))
        answers.append(
            {
                "marker": n,
                "text": answer.text,
                "score": answer.score,
                "context": answer.context,
                "context_start": start,
                "context_end": end,
                "url": url,
                "source_url": source_urls.get(citation.document_id, ""),
            }
        )
        sources.append((n, url, f"{markdown_safe(title)}, {page_label(citation.pages)}paragraph {citation.paragraph_index}"))
        if n == 1:
            out.text(f"{markdown_safe(answer.text)} ")
            out.marker(n, url, title)
            out.text("\n\n> " + markdown_safe(" ".join(answer.context.split())) + " ")
            out.marker(n, url, title)
        else:
            out.text("\n\nOther possible answers: " if n == 2 else "; ")
            out.text(f"{markdown_safe(answer.text)} ")
            out.marker(n, url, title)
    out.text("\n\nSources:")
    for n, url, label in sources:
        out.text(f"\n[{n}] {label}: <{url}>")
    return ChatAnswer("".join(out.parts), rewrite, out.annotations, citations, answers)


def count_tokens(text: str) -> int:
    """A deterministic stand-in for token counts (words and punctuation marks): no LLM tokenizer here."""
    return len(re.findall(r"\w+|[^\w\s]", text))
