"""Training and evaluation data for the span reader: loading, unanswerable negatives, splits.

Sources (all read from paths given on the command line, never copied into the repo):
SQuAD-format files (SQuAD v1.1 train slice, SQuADShifts) and QED/Natural Questions ``.jsonlines``
shards.  ``.gz`` copies of any of them are read transparently.

Unanswerable training examples (SQuAD 2.0 style) are made two ways, so the model learns to
abstain both when the passage is off-topic and when it is on-topic but lacks the answer:

* ``other_paragraph``: the question paired with the paragraph of the same article that shares
  most words with it, among those that do not contain any gold answer string;
* ``answer_removed``: the gold paragraph with the sentence(s) holding the answer deleted, kept
  only when no gold answer string is left in what remains;
* ``question_swap``: the gold paragraph with a question whose anchor (a capitalised word or a
  number that the question shares with the paragraph) is swapped for one the paragraph lacks,
  like SQuAD 2.0's entity-swap unanswerables ("... in 1066?" -> "... in 1071?").
"""
from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")
_STOP = frozenset(
    "a an the of in on at to for by with from and or is was were are be been what which who whom "
    "whose when where why how did do does that this these those as it its into than then".split()
)


@dataclass
class QAExample:
    qid: str
    question: str
    context: str
    answer_start: int  # -1: unanswerable
    answer_text: str
    golds: list[str] = field(default_factory=list)  # all gold texts; [] = unanswerable
    group: str = ""  # article (or paragraph) key: held-out splits never cut a group
    source: str = ""
    kind: str = "positive"  # positive | eval | a negative kind (make_negatives, training_negatives.HARD_KINDS)


def _open_text(path: Path):
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _resolve(path: Path) -> Path:
    path = Path(path)
    if not path.exists() and Path(str(path) + ".gz").exists():
        return Path(str(path) + ".gz")
    return path


def load_squad_articles(path: Path, source: str) -> list[list[QAExample]]:
    """A SQuAD-format file as articles, each a list of answerable examples (first gold span).

    A single-"article" file (SQuADShifts reddit: one article of unrelated comments) is grouped
    per paragraph instead, so that "another paragraph of the same article" stays meaningful.
    """
    with _open_text(_resolve(path)) as fh:
        data = json.load(fh)["data"]
    per_paragraph = len(data) == 1
    articles: list[list[QAExample]] = []
    for a_idx, article in enumerate(data):
        examples: list[QAExample] = []
        for p_idx, para in enumerate(article["paragraphs"]):
            ctx = para["context"]
            group = f"{source}/{a_idx}/{p_idx}" if per_paragraph else f"{source}/{a_idx}"
            for qa in para["qas"]:
                answers = [a for a in qa.get("answers", []) if ctx[a["answer_start"] :].startswith(a["text"])]
                if not answers or qa.get("is_impossible"):
                    continue
                # The most frequent gold answer (ties: first) is the training target.
                texts = [a["text"] for a in answers]
                top = Counter(texts).most_common(1)[0][0]
                first = next(a for a in answers if a["text"] == top)
                examples.append(
                    QAExample(qa["id"], qa["question"], ctx, first["answer_start"], top, texts, group, source)
                )
        articles.append(examples)
    return articles


def load_qed(paths: Iterable[Path]) -> list[list[QAExample]]:
    """QED/NQ shards; all of them form one pseudo-article (negatives come from random pages)."""
    examples: list[QAExample] = []
    for path in paths:
        with _open_text(_resolve(path)) as fh:
            for line in fh:
                row = json.loads(line)
                ctx = row["paragraph_text"]
                spans = row.get("answer_spans") or []
                if not spans:
                    continue
                start, end = spans[0]
                text = ctx[start:end]
                if not text.strip():
                    continue
                golds = [ctx[s:e] for s, e in spans]
                eid = str(row["example_id"])
                examples.append(QAExample(f"qed-{eid}", row["question_text"], ctx, start, text, golds, f"qed/{eid}", "qed"))
    return [examples]


SQUAD_TRAIN_REST = "squad-v1.1-train-rest/train-v1.1-articles-045-442.reconstructed.json"


def load_training_articles(data_dir: Path, squad_rest: bool = True) -> list[list[QAExample]]:
    """All training sources under ``data_dir`` (the layout of shared/data; see its README).

    ``squad_rest``: also the other 398 articles of SQuAD v1.1 train (75,722 questions; with the
    44-article slice all 87,599).  Their ``answer_start`` is the answer's first occurrence in the
    paragraph (the data README: 99.4% agree with the official offsets), so a training target is
    occasionally an earlier copy of the same text; the text is right either way.
    """
    data_dir = Path(data_dir)
    articles = load_squad_articles(data_dir / "squad-v1.1-train-partial/train-slice-44-articles.json", "squad_train")
    if squad_rest and (_resolve(data_dir / SQUAD_TRAIN_REST)).exists():
        articles += load_squad_articles(data_dir / SQUAD_TRAIN_REST, "squad_train_rest")
    articles += load_squad_articles(data_dir / "squadshifts-train/new_wiki_v1.0.json", "shifts_new_wiki")
    articles += load_squad_articles(data_dir / "squadshifts-train/reddit_v1.0.json", "shifts_reddit")
    qed_dir = data_dir / "qed-train-partial"
    qed_files = sorted(p for p in qed_dir.iterdir() if p.name.endswith((".jsonlines", ".jsonlines.gz")))
    articles += load_qed(qed_files)
    forbidden = ("dev-v1.1", "dev-v2.0", "scifact")
    for art in articles:
        for ex in art:
            assert not any(f in ex.source for f in forbidden)
    return articles


def load_eval_squad(path: Path) -> list[QAExample]:
    """SQuAD v1.1 / v2.0 dev for evaluation only: every question with all its gold texts."""
    with _open_text(_resolve(path)) as fh:
        data = json.load(fh)["data"]
    out = []
    for a_idx, article in enumerate(data):
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                golds = [] if qa.get("is_impossible") else [a["text"] for a in qa["answers"]]
                out.append(QAExample(qa["id"], qa["question"], para["context"], -1, "", golds, str(a_idx), "eval", "eval"))
    return out


def _bucket(key: str, seed: int) -> float:
    return (zlib.crc32(f"{seed}:{key}".encode()) % 100_000) / 100_000


def is_heldout(group: str, fraction: float, seed: int) -> bool:
    """Whether ``split_heldout`` puts this group in the held-out share."""
    return _bucket(group, seed) < fraction


def split_heldout(articles: Sequence[list[QAExample]], fraction: float, seed: int):
    """(train, held-out) article lists, split by group hash so no paragraph is in both."""
    train, held = [], []
    for art in articles:
        tr = [ex for ex in art if not is_heldout(ex.group, fraction, seed)]
        he = [ex for ex in art if is_heldout(ex.group, fraction, seed)]
        if tr:
            train.append(tr)
        if he:
            held.append(he)
    return train, held


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _contains_any(text: str, golds: Sequence[str]) -> bool:
    low = text.lower()
    return any(g.strip() and g.strip().lower() in low for g in golds)


def answer_removed(ex: QAExample) -> QAExample | None:
    """The gold paragraph without the sentence(s) that hold the answer, or None."""
    ctx = ex.context
    bounds = [0] + [m.end() for m in _SENTENCE_END.finditer(ctx)] + [len(ctx)]
    a0, a1 = ex.answer_start, ex.answer_start + len(ex.answer_text)
    kept = [ctx[s:e] for s, e in zip(bounds, bounds[1:]) if e <= a0 or s >= a1]
    text = "".join(kept).strip()
    if len(text) < 80 or _contains_any(text, ex.golds):
        return None
    return replace(ex, qid=ex.qid + "-nosent", context=text, answer_start=-1, answer_text="", golds=[], kind="answer_removed")


def other_paragraph(ex: QAExample, article: Sequence[QAExample], rng: random.Random, hard: bool = True) -> QAExample | None:
    """The question against another paragraph of its article (the most similar one if ``hard``)."""
    contexts = list(dict.fromkeys(e.context for e in article if e.context != ex.context))
    contexts = [c for c in contexts if not _contains_any(c, ex.golds)]
    if not contexts:
        return None
    if hard and len(contexts) > 1:
        if len(contexts) > 60:
            contexts = rng.sample(contexts, 60)
        q = _words(ex.question)
        context = max(contexts, key=lambda c: (len(q & _words(c)), rng.random()))
    else:
        context = rng.choice(contexts)
    return replace(ex, qid=ex.qid + "-other", context=context, answer_start=-1, answer_text="", golds=[], kind="other_paragraph")


_ANCHOR = re.compile(r"\b(?:[A-Z][a-z]+|\d{1,4})\b")


_CONTENT = re.compile(r"\b[a-z]{4,}\b")
_QWORDS = _STOP | frozenset("many much long first last name type kind called used year years".split())


def swap_pools(articles: Sequence[list[QAExample]]) -> tuple[list[str], list[str]]:
    """Capitalised and lower-case content words of the training questions (``question_swap``)."""
    caps = Counter(w for art in articles for ex in art for w in _ANCHOR.findall(ex.question)[1:] if not w.isdigit())
    low = Counter(w for art in articles for ex in art for w in _CONTENT.findall(ex.question) if w not in _QWORDS)
    return (sorted(w for w, c in caps.items() if c >= 2 and w.lower() not in _STOP),
            sorted(w for w, c in low.items() if c >= 3))


def question_swap(ex: QAExample, pools: tuple[Sequence[str], Sequence[str]], rng: random.Random) -> QAExample | None:
    """The question with one anchor it shares with the paragraph replaced by one the paragraph lacks.

    Anchors: capitalised words and numbers; failing those, lower-case content words.
    """
    ctx_words = set(_WORD.findall(ex.context.lower()))
    anchors = [m for m in _ANCHOR.finditer(ex.question) if m.start() > 0 and m.group().lower() in ctx_words
               and m.group().lower() not in _STOP]
    pool = pools[0]
    if not anchors:
        anchors = [m for m in _CONTENT.finditer(ex.question) if m.group() in ctx_words and m.group() not in _QWORDS]
        pool = pools[1]
    if not anchors or not pool:
        return None
    m = rng.choice(anchors)
    word = m.group()
    for _ in range(20):
        if word.isdigit():
            value = int(word)
            new = str(value + rng.choice([-1, 1]) * rng.randint(1, max(2, min(40, value // 2 or 2))))
        else:
            new = rng.choice(pool)
        if new.lower() not in ctx_words and new != word and not new.startswith("-"):
            break
    else:
        return None
    question = ex.question[: m.start()] + new + ex.question[m.end() :]
    return replace(ex, qid=ex.qid + "-swap", question=question, answer_start=-1, answer_text="", golds=[], kind="question_swap")


def make_negatives(articles: Sequence[list[QAExample]], ratio: float, seed: int, swap: bool = True,
                   hard: float = 0.0) -> list[QAExample]:
    """About ``ratio`` unanswerable examples per answerable one: for a share ``hard`` of them a
    SQuAD 2.0-style rule edit of the question (training_negatives.py) when one applies; else
    ``question_swap`` (tried first for half of them), ``answer_removed``, ``other_paragraph``.
    ``hard=0`` reproduces the negatives of the shipped reader's recipe exactly."""
    from rag.training.negatives import article_capitals, hard_negative

    rng = random.Random(seed)
    pools = swap_pools(articles)
    makers = {
        "answer_removed": lambda ex, art: answer_removed(ex),
        "other_paragraph": lambda ex, art: other_paragraph(ex, art, rng, hard=ex.source != "qed"),
        "question_swap": lambda ex, art: question_swap(ex, pools, rng),
    }
    out: list[QAExample] = []
    for art in articles:
        caps = article_capitals(art) if hard > 0 else []
        for ex in art:
            if rng.random() >= ratio:
                continue
            if hard > 0 and rng.random() < hard:
                neg = hard_negative(ex, caps, rng)
                if neg is not None:
                    out.append(neg)
                    continue
            kinds = ["answer_removed", "other_paragraph"]
            rng.shuffle(kinds)
            position = 0 if rng.random() < 0.5 else rng.randint(1, 2)
            if swap:
                kinds.insert(position, "question_swap")
            for kind in kinds:
                neg = makers[kind](ex, art)
                if neg is not None:
                    out.append(neg)
                    break
    return out


def subsample(articles: Sequence[list[QAExample]], max_questions: int | None, seed: int) -> list[list[QAExample]]:
    """At most ``max_questions`` answerable examples, the same fraction from every source."""
    total = sum(len(a) for a in articles)
    if not max_questions or max_questions >= total:
        return [list(a) for a in articles]
    keep = max_questions / total
    rng = random.Random(seed + 1)
    return [[ex for ex in art if rng.random() < keep] for art in articles]


def flatten(articles: Sequence[list[QAExample]]) -> list[QAExample]:
    return [ex for art in articles for ex in art]


class BM25:
    """A small BM25 (k1=0.9, b=0.4) used to simulate retrieval when calibrating scores."""

    def __init__(self, texts: Sequence[str], k1: float = 0.9, b: float = 0.4):
        import math

        self.docs = [Counter(_WORD.findall(t.lower())) for t in texts]
        self.lens = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lens) / max(1, len(self.lens))
        df: Counter = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, d in enumerate(self.docs):
            for w in d:
                self.postings.setdefault(w, []).append(i)
        self.k1, self.b = k1, b

    def top(self, query: str, k: int) -> list[int]:
        scores: Counter = Counter()
        for w in set(_WORD.findall(query.lower())):
            idf = self.idf.get(w)
            if idf is None:
                continue
            for i in self.postings[w]:
                tf = self.docs[i][w]
                norm = tf + self.k1 * (1 - self.b + self.b * self.lens[i] / self.avg)
                scores[i] += idf * tf * (self.k1 + 1) / norm
        return [i for i, _ in scores.most_common(k)]
