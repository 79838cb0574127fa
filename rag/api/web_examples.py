"""Example questions for the web page, drawn from the indexed documents (never a fixed list).

The largest documents are used first.  A section heading that is a noun phrase becomes "What is
<heading>?" / "What are ...?"; a heading that is already a question is kept.  Documents without
headings give the subject of an early "<Subject> is/was ..." sentence ("What was the alliance?").
Nothing here is a promise that the reader finds an answer: these are starting points that name
what the documents are about.
"""
from __future__ import annotations

import re

from rag.types import Paragraph

MAX_EXAMPLES = 4
# Headings or subjects longer than this read as sentences, not topics.
MAX_TOPIC_WORDS = 10
# Only the opening paragraphs are searched for a subject: they introduce the document's topic.
OPENING_PARAGRAPHS = 6
_SUBJECT = re.compile(r"^(?:In [^,]{1,40}, )?(?P<subject>[A-Z][^,.;:!?]{2,80}?)(?:, [^,]{1,80},)? (?P<verb>is|are|was|were) ")


def _heading_question(heading: str) -> str | None:
    heading = heading.strip().rstrip(".:")
    words = heading.split()
    if not words or len(words) > MAX_TOPIC_WORDS:
        return None
    if heading.endswith("?"):
        return heading
    if words[0] in ("The", "A", "An"):  # "What are the Broader Implications?", not "... The Broader ..."
        heading = words[0].lower() + heading[len(words[0]):]
    plural = words[-1].lower().endswith("s") and not words[-1].lower().endswith(("ss", "'s", "’s", "us", "is"))
    return f"What {'are' if plural else 'is'} {heading}?"


def _subject_question(text: str) -> str | None:
    match = _SUBJECT.match(text)
    if not match:
        return None
    subject = match.group("subject").strip()
    if len(subject.split()) > MAX_TOPIC_WORDS or subject.split()[0] in {"It", "This", "That", "There", "These", "They"}:
        return None
    return f"What {match.group('verb')} {subject}?"


def example_questions(documents: dict[str, int], paragraphs: list[Paragraph], limit: int = MAX_EXAMPLES) -> list[dict]:
    """Up to ``limit`` questions, one per document in turn, largest document (characters) first."""
    by_document: dict[str, list[Paragraph]] = {}
    for paragraph in paragraphs:
        by_document.setdefault(paragraph.document_id, []).append(paragraph)
    candidates: list[list[dict]] = []
    for document_id in sorted(documents, key=lambda d: (-documents[d], d)):
        found: list[dict] = []
        ordered = sorted(by_document.get(document_id, []), key=lambda p: p.paragraph_index)
        for paragraph in ordered:
            heading = paragraph.section.split(" > ")[-1] if paragraph.section else ""
            question = _heading_question(heading) if heading else None
            if question:
                found.append({"question": question, "document_id": document_id})
        for paragraph in ordered[:OPENING_PARAGRAPHS]:
            question = _subject_question(paragraph.text)
            if question:
                found.append({"question": question, "document_id": document_id})
        candidates.append(found)
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
