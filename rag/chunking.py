"""Stage 2: documents -> paragraphs -> passages, with exact character offsets.

Paragraphs are separated by newlines (one seed puts a paragraph on each line, the other uses
blank lines).  Short heading lines become the ``section`` of the paragraphs below them.  A
paragraph contained in another paragraph of the same document (a pull quote) is dropped.
A paragraph longer than ``max_words`` is cut into overlapping sentence windows.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.types import Document, Paragraph, Passage

# Heading heuristics, measured on the seeds: their headings are 24-72 characters and 3-12 words;
# body paragraphs are 160+ characters.  A byline ("By Dr. ...") is kept as text so author
# questions stay answerable.
HEADING_MAX_CHARS = 80
HEADING_MAX_WORDS = 12
_SENTENCE_END_CHARS = ".!?:;,\"'”’)»|"
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+")
_LINE = re.compile(r"[^\n]+")
# Pull-quote detection: a paragraph is a repeat when >= 80% of its 3-word shingles occur in one
# other paragraph.  Exact containment is too strict: the second seed's pull quote edits the
# original ("IP4" -> "[Indo-Pacific Four]"), which leaves 92% of its shingles in place, while
# distinct paragraphs of the seeds share at most 20%.
SHINGLE_WORDS = 3
REPEAT_COVERAGE = 0.8

# Words that end in a period without ending a sentence.
_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "mt", "gen", "col", "lt", "sgt", "capt", "cmdr",
    "gov", "sen", "rep", "pres", "vs", "etc", "e.g", "i.e", "no", "nos", "fig", "figs", "vol", "pp",
    "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "u.s", "u.k", "u.n", "d.c", "a.m", "p.m", "approx", "dept", "est", "al",
}
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space and a capital,
# digit or opening quote.
_SENTENCE_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def is_heading(line: str, next_line: str | None) -> bool:
    if _MARKDOWN_HEADING.match(line):
        return True
    if len(line) > HEADING_MAX_CHARS or len(line.split()) > HEADING_MAX_WORDS:
        return False
    if line[-1] in _SENTENCE_END_CHARS or line.lower().startswith("by "):
        return False
    # A heading introduces body text (or a byline): the next line must be longer than it.
    return next_line is not None and (len(next_line) > len(line) or next_line.lower().startswith("by "))


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < SHINGLE_WORDS:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def split_paragraphs(document: Document) -> list[Paragraph]:
    lines: list[tuple[int, int]] = []
    for match in _LINE.finditer(document.text):
        raw = match.group()
        stripped = raw.strip()
        if stripped:
            start = match.start() + (len(raw) - len(raw.lstrip()))
            lines.append((start, start + len(stripped)))

    candidates: list[tuple[int, int, str]] = []
    section = ""
    for i, (start, end) in enumerate(lines):
        line = document.text[start:end]
        next_line = document.text[slice(*lines[i + 1])] if i + 1 < len(lines) else None
        if is_heading(line, next_line):
            section = _MARKDOWN_HEADING.sub("", line).strip()
            continue
        candidates.append((start, end, section))

    repeats = _repeated_paragraphs([document.text[s:e] for s, e, _ in candidates])
    paragraphs: list[Paragraph] = []
    for i, (start, end, section) in enumerate(candidates):
        if i in repeats:
            continue
        paragraphs.append(
            Paragraph(
                document_id=document.document_id,
                paragraph_index=len(paragraphs),
                text=document.text[start:end],
                doc_start=start,
                doc_end=end,
                section=section,
            )
        )
    return paragraphs


def _repeated_paragraphs(texts: Sequence[str]) -> set[int]:
    """Indexes of paragraphs that repeat (most of) another, longer or earlier, paragraph."""
    shingles = [_shingles(t) for t in texts]
    where: dict[tuple[str, ...], set[int]] = {}
    for i, own in enumerate(shingles):
        for shingle in own:
            where.setdefault(shingle, set()).add(i)
    repeats: set[int] = set()
    for i, own in enumerate(shingles):
        if not own:
            continue
        overlap: dict[int, int] = {}
        for shingle in own:
            for j in where[shingle]:
                if j != i:
                    overlap[j] = overlap.get(j, 0) + 1
        for j, shared in overlap.items():
            if j in repeats or shared < REPEAT_COVERAGE * len(own):
                continue
            longer = len(texts[j]) > len(texts[i]) or (len(texts[j]) == len(texts[i]) and j < i)
            if longer:
                repeats.add(i)
                break
    return repeats


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``; whitespace between sentences belongs to none."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BOUNDARY.finditer(text):
        stop = match.start() + 1
        # include closing quotes/brackets that follow the punctuation
        while stop < len(text) and text[stop] in "\"'”’)]":
            stop += 1
        word = re.search(r"(\S+)$", text[start:match.start()])
        if word and (_is_abbreviation(word.group(1)) or len(word.group(1).strip("(\"'“")) == 1):
            continue  # "Dr. Kim", "Lance D. Jackson"
        spans.append((start, stop))
        start = match.end()
    if start < len(text) and text[start:].strip():
        end = len(text.rstrip())
        spans.append((start, end))
    return spans


def _is_abbreviation(word: str) -> bool:
    return word.lower().strip("(\"'“").rstrip(".") in _ABBREVIATIONS


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of the sentence(s) covering ``text[start:end]``."""
    spans = sentence_spans(text) or [(0, len(text))]
    first = next((s for s, e in spans if e > start), spans[-1][0])
    last = next((e for s, e in reversed(spans) if s < end), spans[0][1])
    return min(first, start), max(last, end)


def make_passages(
    paragraphs: Iterable[Paragraph],
    max_words: int,
    overlap_sentences: int = 1,
    first_passage_id: int = 0,
    title: str = "",
) -> list[Passage]:
    passages: list[Passage] = []
    for paragraph in paragraphs:
        for local_start, local_end in _windows(paragraph.text, max_words, overlap_sentences):
            passages.append(
                Passage(
                    passage_id=first_passage_id + len(passages),
                    document_id=paragraph.document_id,
                    paragraph_index=paragraph.paragraph_index,
                    text=paragraph.text[local_start:local_end],
                    paragraph_start=local_start,
                    doc_start=paragraph.doc_start + local_start,
                    section=paragraph.section,
                    title=title,
                )
            )
    return passages


def _windows(text: str, max_words: int, overlap: int) -> list[tuple[int, int]]:
    if len(text.split()) <= max_words:
        return [(0, len(text))]
    sentences = _bounded_sentences(text, max_words)
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(sentences):
        j, words = i, 0
        while j < len(sentences) and (j == i or words + sentences[j][2] <= max_words):
            words += sentences[j][2]
            j += 1
        windows.append((sentences[i][0], sentences[j - 1][1]))
        if j >= len(sentences):
            break
        i = max(j - overlap, i + 1)
    return windows


def _bounded_sentences(text: str, max_words: int) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, words); a sentence longer than max_words is cut at word gaps."""
    out: list[tuple[int, int, int]] = []
    for start, end in sentence_spans(text):
        words = list(re.finditer(r"\S+", text[start:end]))
        for k in range(0, len(words), max_words):
            chunk = words[k : k + max_words]
            out.append((start + chunk[0].start(), start + chunk[-1].end(), len(chunk)))
    return out
