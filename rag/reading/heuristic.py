"""A model-free reader: best sentence by question-word overlap, then the tightest typed span.

It needs no weights, so it is the fallback when no span-reader model is installed.  The
sentence score is the IDF-weighted share of the question's content words (Snowball-stemmed)
found in the sentence; the answer is the candidate span (name, number, date, or the clause that
follows the matched words) of the type the question asks for, nearest to the matched words.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

import Stemmer

from rag.sentences import sentence_spans
from rag.reading.base import Reader
from rag.types import AnswerSpan, ReaderOutput, RetrievedPassage

_WORD = re.compile(r"[\w’'-]+")
_STOP = set(
    "a an the of in on at to for from by with about as is are was were be been being do does did has have had "
    "what which who whom whose when where why how that this these those it its it's and or but not no into "
    "than then there their they them he she his her we our you your i me my can could would should will shall "
    "may might must also such so very much many any some all each per via named called according".split()
)
_NAME = re.compile(r"\b[A-Z][\w’'.-]*(?:\s+(?:[A-Z][\w’'.-]*|(?:of|de|von|van|al)\b))*(?<![a-z] of)(?<! de)")
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = re.compile(rf"(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|{_MONTH}\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}}|\b(?:1[5-9]|20)\d{{2}}s?\b)")
_NUMBER = re.compile(r"(?:\$|€|£)?\b\d[\d,.]*(?:\s*(?:%|percent|million|billion|thousand|km|miles|years?|days?|members?|countries))?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred)\b")

# Abstain below 0.5.  On eval/seed_gold.jsonl (89 questions, 16 unanswerable; MiniLM, hybrid)
# it gives F1 37.5 with no-answer accuracy 81.3; the best threshold there, 0.476, gives F1 41.0.
# That gain comes from the set we report on (89 questions), so 0.5 stays (eval/RESULTS.md).
DEFAULT_THRESHOLD = 0.5


class HeuristicReader(Reader):
    name = "heuristic"
    default_threshold = DEFAULT_THRESHOLD

    def __init__(self):
        self._stemmer = Stemmer.Stemmer("english")

    def _content_stems(self, text: str) -> list[str]:
        words = (re.sub(r"['’]s?$", "", w.lower()) for w in _WORD.findall(text))
        return [self._stemmer.stemWord(w) for w in words if w and w not in _STOP]

    def read(self, question: str, passages: Sequence[RetrievedPassage], top_n: int = 3) -> ReaderOutput:
        q_stems = set(self._content_stems(question))
        if not q_stems or not passages:
            return ReaderOutput(spans=[], no_answer_score=1.0)
        # IDF over the retrieved sentences: a question word found everywhere tells little.
        sentences = []
        for retrieved in passages:
            text, offset = retrieved.passage.text, retrieved.passage.paragraph_start
            for start, end in sentence_spans(text):
                sentences.append((retrieved, offset + start, offset + end, set(self._content_stems(text[start:end]))))
        n = len(sentences)
        idf = {s: math.log(1 + n / (1 + sum(s in stems for *_, stems in sentences))) for s in q_stems}
        total = sum(idf.values())
        q_type = _question_type(question)
        spans: list[AnswerSpan] = []
        for retrieved, start, end, stems in sentences:
            overlap = sum(idf[s] for s in q_stems & stems) / total
            if overlap == 0:
                continue
            candidate = self._best_candidate(retrieved.paragraph.text, start, end, q_type, q_stems)
            if candidate is None:
                continue
            span_start, span_end, type_match = candidate
            # Small prior for the retriever's rank: ties between equally matching sentences go
            # to the passage retrieval trusted more.
            score = overlap * (1.0 if type_match else 0.8) * (1.0 - 0.02 * (retrieved.rank - 1 if retrieved.rank else 0))
            spans.append(AnswerSpan(retrieved, span_start, span_end, max(0.0, min(1.0, score))))
        spans.sort(key=lambda s: -s.score)
        best = spans[0].score if spans else 0.0
        return ReaderOutput(spans=_distinct(spans)[:top_n], no_answer_score=1.0 - best)

    def _best_candidate(self, paragraph: str, start: int, end: int, q_type: str, q_stems: set[str]):
        sentence = paragraph[start:end]
        pattern = {"person": _NAME, "place": _NAME, "date": _DATE, "number": _NUMBER}.get(q_type)
        anchors = [m.start() for m in _WORD.finditer(sentence) if self._stemmer.stemWord(m.group().lower()) in q_stems]
        if pattern is not None:
            best = None
            for match in pattern.finditer(sentence):
                text = match.group().strip(" ,.;:")
                words = self._content_stems(text)
                if not text or not words or set(words) <= q_stems or text.lower() in _STOP:
                    continue
                lead = match.start() + (len(match.group()) - len(match.group().lstrip(" ,.;:")))
                distance = min((abs(lead - a) for a in anchors), default=len(sentence))
                if best is None or distance < best[0]:
                    best = (distance, start + lead, start + lead + len(text))
            if best is not None:
                return best[1], best[2], True
        # No typed candidate: quote the clause after the last matched question word.
        clause = _clause_after_anchors(sentence, anchors)
        if clause is None:
            return None
        return start + clause[0], start + clause[1], pattern is None


def _clause_after_anchors(sentence: str, anchors: list[int]) -> tuple[int, int] | None:
    if not anchors:
        return None
    pos = sentence.find(" ", max(anchors))
    if pos < 0:
        return None
    rest = sentence[pos:]
    match = re.search(r"[^\s,;:“\"(][^,;:.”\")]*", rest)
    if match is None:
        return None
    text = match.group().rstrip()
    return pos + match.start(), pos + match.start() + len(text)


def _question_type(question: str) -> str:
    q = question.lower()
    if re.search(r"\bhow (many|much|long|far|old)\b|\bwhat (percentage|number|share)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|month|decade)\b|\bwhich year\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhich (city|country|countries|capital)\b|\bwhat (city|country|capital)\b", q):
        return "place"
    return "other"


def _distinct(spans: list[AnswerSpan]) -> list[AnswerSpan]:
    seen: set[str] = set()
    out = []
    for span in spans:
        key = span.text.lower()
        if key not in seen:
            seen.add(key)
            out.append(span)
    return out
