"""Example questions for the web page, drawn from the indexed documents (never a fixed list).

The largest documents are used first, one question per document in turn.  Two sources, taken
alternately within a document:

* a section heading that is a topic ("NATO's Institutional and Cultural Challenges") becomes
  "What are <heading>?"; a heading that is already a question is kept; headings every document
  has ("Introduction", "References") and one-word headings name no topic and are skipped;
* a sentence of the opening paragraphs that states a fact about its subject becomes the
  question that fact answers, by the shape of its verb:

  - "S, formally X, ..."                 -> "What is S formally called?"
  - "S was founded in 1949"              -> "When was S founded?"
  - "S was founded by X"                 -> "Who founded S?"
  - "S was created to keep ..."          -> "Why was S created?"
  - "S has become a leading power"       -> "What has S become?"
  - "The alliance is a pact of ..."      -> "What is the alliance?" (a common-noun subject only)

  "What is <name>?" from "South Korea, ..., is not a NATO member" is never made (issue 21): a
  sentence whose subject is a bare proper name and whose verb is "is" names the topic without a
  fact to ask for.

Nothing here is a promise that the reader finds an answer: these are starting points that name
what the documents are about.
"""
from __future__ import annotations

import re

from rag.sentences import sentence_spans
from rag.types import Paragraph

MAX_EXAMPLES = 4
# Headings or subjects longer than this read as sentences, not topics.
MAX_TOPIC_WORDS = 10
# Only the opening paragraphs are searched for facts: they introduce the document's topic.
OPENING_PARAGRAPHS = 6
# Headings that name a part of any document, not what this one is about ("What is Conclusion?").
GENERIC_HEADINGS = frozenset(
    "abstract acknowledgements acknowledgments appendix background bibliography changelog conclusion conclusions "
    "contents contributing credits description discussion examples faq glossary index installation introduction "
    "license methods notes options overview preface references results see also summary synopsis table of contents "
    "usage".split()
) | {"see also", "table of contents", "further reading", "getting started", "what's new", "release notes"}
# Words that may sit inside a proper name without making it a common-noun phrase ("Bank of England").
_NAME_GLUE = frozenset({"of", "and", "the", "for", "de", "du", "van", "von", "&"})
_DETERMINERS = ("The", "A", "An")
_PRONOUNS = frozenset({"It", "This", "That", "There", "These", "Those", "They", "He", "She", "We", "I", "You", "Its", "Their"})
# Past participles that are not "-ed" but often carry a fact after "has"/"have".
_IRREGULAR = frozenset({"become", "made", "taken", "built", "held", "led", "grown", "given", "shown", "brought", "won", "begun", "set", "kept", "sent", "written", "chosen"})
_PREPOSITIONS = frozenset({"to", "in", "on", "at", "by", "for", "with", "from", "into", "that", "as", "of", "since", "about", "been", "not", "also", "already"})
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"

_SUBJECT = r"(?P<subject>[A-Z][\w’'.-]*(?: [\w’'.()-]+){0,9}?)"
_APPOSITION = r"(?:, (?P<apposition>[^,]{1,80}),)?"
_ALIAS = re.compile(_SUBJECT + r", (?P<how>formally|officially|also known as) [^,]{2,80},")
_PASSIVE = re.compile(_SUBJECT + _APPOSITION + r" (?P<aux>was|were) (?P<verb>[a-z]{3,}) (?P<rest>.*)$")
_PERFECT = re.compile(_SUBJECT + _APPOSITION + r" (?P<aux>has|have|had) (?P<verb>[a-z]{3,}) (?P<rest>.*)$")
# "has branded South Korea a Global Pivot State": a named object, then what it was made.
_NAMED_OBJECT = re.compile(r"(?P<name>[A-Z][\w’'-]*(?: [A-Z][\w’'-]*){0,4}) (?:a|an|the) ")
_DETERMINER_NEXT = re.compile(r"(?:a|an|the|its|their|his|her|our|one|two|three|several|many|new) ")
_COPULA = re.compile(_SUBJECT + _APPOSITION + r" (?P<aux>is|are|was|were) (?:a|an|the) [a-z]")
_WHEN = re.compile(rf"^(?:in|on|at) (?:\d{{4}}|(?:{_MONTHS})\b|the (?:\d{{4}}s|\d+(?:st|nd|rd|th) century))")


def _heading_question(heading: str) -> str | None:
    heading = heading.strip().rstrip(".:")
    words = heading.split()
    if len(words) < 2 or len(words) > MAX_TOPIC_WORDS or heading.lower() in GENERIC_HEADINGS:
        return None
    if heading.endswith("?"):
        return heading
    if words[0] in _DETERMINERS:  # "What are the Broader Implications?", not "... The Broader ..."
        heading = words[0].lower() + heading[len(words[0]):]
    plural = words[-1].lower().endswith("s") and not words[-1].lower().endswith(("ss", "'s", "’s", "us", "is"))
    return f"What {'are' if plural else 'is'} {heading}?"


def _usable_subject(subject: str) -> str | None:
    """The subject as it reads inside a question ("the alliance"), or None for a pronoun or a
    clause ("In 2024 the summit")."""
    words = subject.split()
    if not words or len(words) > MAX_TOPIC_WORDS or words[0] in _PRONOUNS or words[0] in ("In", "On", "At", "As", "For", "During", "After", "Before", "While", "When", "If", "Although"):
        return None
    if words[0] in _DETERMINERS and len(words) > 1:
        return words[0].lower() + subject[len(words[0]):]
    return subject


def _is_bare_name(subject: str) -> bool:
    """Only capitalised words (and "of", "and", ...): a name, not a described thing."""
    words = [w for w in subject.split() if w not in _DETERMINERS]
    return all(w[:1].isupper() or w[:1].isdigit() or w.lower() in _NAME_GLUE for w in words)


def fact_question(sentence: str) -> str | None:
    """The question a sentence's first fact about its subject answers (module doc), or None."""
    sentence = sentence.strip()
    if match := _ALIAS.match(sentence):
        subject = _usable_subject(match.group("subject"))
        how = match.group("how")
        if subject:
            return f"What else is {subject} called?" if how == "also known as" else f"What is {subject} {how} called?"
    if match := _PASSIVE.match(sentence):
        subject, aux, verb, rest = _usable_subject(match.group("subject")), match.group("aux"), match.group("verb"), match.group("rest")
        participle = verb.endswith("ed") or verb in _IRREGULAR
        if subject and participle and _WHEN.match(rest):
            return f"When {aux} {subject} {verb}?"
        # "Who designed S?": a regular verb's participle is also its past tense ("written" is not).
        if subject and verb.endswith("ed") and rest.startswith("by ") and rest[3:4].isupper():
            return f"Who {verb} {subject}?"
        if subject and participle and re.match(r"to [a-z]{2,} ", rest):
            return f"Why {aux} {subject} {verb}?"
    if match := _PERFECT.match(sentence):
        subject, aux, verb, rest = _usable_subject(match.group("subject")), match.group("aux"), match.group("verb"), match.group("rest")
        after = rest.split(" ", 1)[0].lower()
        if subject and (verb.endswith("ed") or verb in _IRREGULAR) and after not in _PREPOSITIONS:
            if named := _NAMED_OBJECT.match(rest):
                return f"What {aux} {subject} {verb} {named.group('name')}?"
            # "has become crucial": an adjective after the verb asks for nothing; a noun phrase does.
            if verb.endswith("ed") or _DETERMINER_NEXT.match(rest):
                return f"What {aux} {subject} {verb}?"
    if match := _COPULA.match(sentence):
        subject = _usable_subject(match.group("subject"))
        if subject and not _is_bare_name(subject):
            return f"What {match.group('aux')} {subject}?"
    return None


def _sentences(paragraph: Paragraph) -> list[str]:
    """The paragraph's sentences, line by line: a heading leading the paragraph is its own line."""
    found: list[str] = []
    for line in paragraph.text.split("\n"):
        found.extend(line[s:e] for s, e in sentence_spans(line))
    return found


def _interleave(first: list[dict], second: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for i in range(max(len(first), len(second))):
        merged.extend(x[i] for x in (first, second) if i < len(x))
    return merged


def example_questions(documents: dict[str, int], paragraphs: list[Paragraph], limit: int = MAX_EXAMPLES) -> list[dict]:
    """Up to ``limit`` questions, one per document in turn, largest document (characters) first."""
    by_document: dict[str, list[Paragraph]] = {}
    for paragraph in paragraphs:
        by_document.setdefault(paragraph.document_id, []).append(paragraph)
    candidates: list[list[dict]] = []
    for document_id in sorted(documents, key=lambda d: (-documents[d], d)):
        ordered = sorted(by_document.get(document_id, []), key=lambda p: p.paragraph_index)
        headings: list[dict] = []
        for paragraph in ordered:
            heading = paragraph.section.split(" > ")[-1] if paragraph.section else ""
            question = _heading_question(heading) if heading else None
            if question:
                headings.append({"question": question, "document_id": document_id})
        facts: list[dict] = []
        for paragraph in ordered[:OPENING_PARAGRAPHS]:
            for sentence in _sentences(paragraph):
                question = fact_question(sentence)
                if question:
                    facts.append({"question": question, "document_id": document_id})
        candidates.append(_interleave(headings, facts))
    examples: list[dict] = []
    seen: set[str] = set()
    # Round robin over documents, so the largest one does not take every slot.
    while len(examples) < limit and any(candidates):
        for found in candidates:
            while found:
                example = found.pop(0)
                if example["question"].lower() not in seen:
                    seen.add(example["question"].lower())
                    examples.append(example)
                    break
            if len(examples) >= limit:
                break
    return examples
