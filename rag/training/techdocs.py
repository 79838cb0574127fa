"""The technical-document training set: documents collected by ``techdocs_collect`` -> questions.

    python -m rag.training.techdocs build --files /work/techdocs/files --out /work/techdocs/questions.jsonl

Every document is parsed and cut into paragraphs exactly as the service does (``read_document``,
``split_paragraphs``), so the reader trains on the contexts it will be given.  Questions come from
the paragraphs' structure (``techdocs_questions``); unanswerable ones swap the question's subject
(an option, a parameter, a table row, a defined term) for one of the same kind the paragraph
does not mention: "What does --frobnicate do?" against the paragraph that describes ``--force``,
"What is the default temp_buffers?" against the paragraph that gives shared_buffers' default.

One JSON line per document: its file, package, and questions (each with context, answer_start,
answer_text, kind).  ``load_techdocs`` turns the file into articles (one per document, so a
held-out split keeps whole documents out) and the negatives that go with them.

A paragraph that also occurs in an evaluation document (eval/realdocs/files, corpus/) is dropped
before any question is made from it; the build reports how many were.
"""
from __future__ import annotations

import json
import random
import re
import signal
from collections import Counter, defaultdict
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

import typer

from rag.text_metrics import normalize_answer
from rag.training.data import QAExample
from rag.training.techdocs_questions import TechQuestion, paragraph_questions

# At most this many answerable questions from one document, and of one kind in it: a long
# manual would otherwise outweigh hundreds of short pages.
PER_DOCUMENT = 24
PER_KIND = {"option": 8, "option_desc": 5, "default": 6, "table": 6, "definition": 4, "name": 1, "faq": 4}
NEGATIVE_SHARE = 0.45  # subject-swap unanswerables per answerable question (SQuAD 2.0 has ~0.5)
PARSE_SECONDS = 60
# The unanswerable kinds ``subject_swaps`` makes (calibration reads them as real-use unanswerables).
TECH_SWAP_KINDS = tuple(f"swap_{kind}" for kind in PER_KIND)

app = typer.Typer(add_completion=False)


def _paragraph_key(text: str) -> str:
    return normalize_answer(text)[:300]


def eval_paragraph_keys(roots: list[Path]) -> set[str]:
    """Normalised paragraphs of every evaluation document (to keep them out of training)."""
    from rag.chunking import split_paragraphs
    from rag.ingest import read_document

    keys: set[str] = set()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".meta.json", ".jsonl", ".md.orig"))):
            try:
                doc = read_document(path, root)
            except Exception:  # noqa: BLE001 - a file the parser refuses holds no paragraph to exclude
                continue
            keys.update(_paragraph_key(p.text) for p in split_paragraphs(doc) if len(p.text) > 40)
    return keys


def _alarm(signum, frame):
    raise TimeoutError("parse took too long")


def _parse(args: tuple[str, str]) -> tuple[str, str, list[tuple[str, str, str]]]:
    """(file, title, [(paragraph text, section, kind)]) in a worker; [] when the file fails."""
    from rag.chunking import split_paragraphs
    from rag.ingest import read_document

    file, root = args
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PARSE_SECONDS)
    try:
        doc = read_document(Path(root) / file, Path(root))
        return file, doc.title, [(p.text, p.section, p.kind) for p in split_paragraphs(doc)]
    except Exception:  # noqa: BLE001 - a broken or slow file is skipped, the build goes on
        return file, "", []
    finally:
        signal.alarm(0)


def _tool_name(title: str, kind: str) -> str:
    if kind in ("man", "info"):
        first = re.split(r"[\s(,]", title.strip(), maxsplit=1)[0]
        return first if re.fullmatch(r"[\w.+-]{2,40}", first) else ""
    return ""


def document_questions(file: str, title: str, paragraphs: list[tuple[str, str, str]], doc_kind: str,
                       excluded: set[str], rng: random.Random) -> tuple[list[dict], int]:
    tool = _tool_name(title, doc_kind)
    found: list[tuple[TechQuestion, str]] = []
    dropped = 0
    previous = ""
    for text, section, _kind in paragraphs:
        if _paragraph_key(text) in excluded:
            dropped += 1
            continue
        found += [(q, text) for q in paragraph_questions(text, section, previous, tool, rng)]
        previous = text
    rng.shuffle(found)
    per_kind: Counter = Counter()
    kept: list[tuple[TechQuestion, str]] = []
    for q, text in found:
        if len(kept) < PER_DOCUMENT and per_kind[q.kind] < PER_KIND.get(q.kind, 3):
            per_kind[q.kind] += 1
            kept.append((q, text))
    rows = [{"question": q.question, "question_unseen": q.question_unseen, "context": text, "answer_start": q.answer_start,
             "answer_text": q.answer_text, "kind": q.kind, "subject": q.subject} for q, text in kept]
    return rows, dropped


def subject_swaps(rows: list[dict], pools: dict[str, list[str]], rng: random.Random, share: float) -> list[dict]:
    """Unanswerable twins: the subject replaced by another of its kind that the paragraph lacks."""
    out = []
    for row in rows:
        subject = row["subject"]
        if rng.random() >= share or not subject or subject not in row["question"]:
            continue
        pool = pools.get(row["kind"], [])
        context = row["context"].lower()
        for _ in range(12):
            other = rng.choice(pool) if pool else ""
            if other and other != subject and other.lower() not in context and not (set(normalize_answer(other).split()) <= set(context.split())):
                question = row["question"].replace(subject, other, 1)
                unseen = row.get("question_unseen", "")
                unseen = unseen.replace(subject, other, 1) if subject in unseen else ""
                out.append({**row, "question": question, "question_unseen": unseen, "answer_start": -1, "answer_text": "",
                            "kind": f"swap_{row['kind']}"})
                break
    return out


@app.command()
def build(
    files: Path = typer.Option(Path("/work/techdocs/files"), help="The collector's output (with sources.jsonl)."),
    out: Path = typer.Option(Path("/work/techdocs/questions.jsonl")),
    eval_roots: list[Path] = typer.Option([Path("eval/realdocs/files"), Path("corpus")], help="Evaluation documents to keep out."),
    workers: int = typer.Option(2),
    seed: int = typer.Option(19),
) -> None:
    """Parse the collected documents and write their questions (one JSON line per document)."""
    sources = [json.loads(line) for line in (files / "sources.jsonl").read_text().splitlines() if line.strip()]
    excluded = eval_paragraph_keys(eval_roots)
    rng = random.Random(seed)
    meta = {s["file"]: s for s in sources}
    docs: list[dict] = []
    dropped = failed = 0
    with Pool(workers, maxtasksperchild=50) as pool:
        for file, title, paragraphs in pool.imap_unordered(_parse, [(s["file"], str(files)) for s in sources], chunksize=4):
            if not paragraphs:
                failed += 1
                continue
            rows, n_dropped = document_questions(file, title, paragraphs, meta[file]["kind"], excluded, random.Random(f"{seed}:{file}"))
            dropped += n_dropped
            if rows:
                docs.append({"file": file, "package": meta[file]["package"], "title": title, "rows": rows})
    docs.sort(key=lambda d: d["file"])
    pools: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        for row in doc["rows"]:
            pools[row["kind"]].append(row["subject"])
    for doc in docs:
        doc["rows"] += subject_swaps(doc["rows"], pools, rng, NEGATIVE_SHARE)
    with out.open("w") as fh:
        for doc in docs:
            fh.write(json.dumps(doc) + "\n")
    kinds = Counter(row["kind"] for doc in docs for row in doc["rows"])
    by_format = Counter(meta[d["file"]]["kind"] for d in docs)
    print(json.dumps({"documents": len(docs), "failed": failed, "eval_paragraphs_dropped": dropped,
                      "by_format": by_format, "kinds": kinds, "packages": len({d["package"] for d in docs})}))


def load_techdocs(path: Path, unseen: Callable[[str], bool] | None = None) -> tuple[list[list[QAExample]], list[QAExample]]:
    """(articles of answerable questions, one per document; their unanswerable twins).

    Documents whose group ``unseen`` accepts (the held-out ones) are asked in their unseen
    wordings (``question_unseen``, from templates no training question uses), where they have one."""
    articles: list[list[QAExample]] = []
    negatives: list[QAExample] = []
    for line in Path(path).read_text().splitlines():
        doc = json.loads(line)
        group = f"tech/{doc['file']}"
        reworded = unseen is not None and unseen(group)
        article = []
        for i, row in enumerate(doc["rows"]):
            qid = f"tech-{doc['file']}-{i}"
            question = (reworded and row.get("question_unseen")) or row["question"]
            if row["answer_start"] >= 0:
                article.append(QAExample(qid, question, row["context"], row["answer_start"], row["answer_text"],
                                         [row["answer_text"]], group, "techdocs", row["kind"]))
            else:
                negatives.append(QAExample(qid, question, row["context"], -1, "", [], group, "techdocs", row["kind"]))
        if article:
            articles.append(article)
    return articles, negatives


@app.command()
def manifest(
    files: Path = typer.Option(Path("/work/techdocs/files")),
    questions: Path = typer.Option(Path("/work/techdocs/questions.jsonl")),
    out: Path = typer.Option(Path("eval/reader/techdocs_training_documents.tsv")),
) -> None:
    """Write the list of documents trained on (format, package, version, original path, licence, questions)."""
    meta = {s["file"]: s for line in (files / "sources.jsonl").read_text().splitlines() if line.strip() for s in [json.loads(line)]}
    lines = ["# Technical documents of the reader's training set (issue 19; 6% of them held out whole for calibration): format, package, version, original path, licence "
             "(or where it is stated), answerable questions made from it (python -m rag.training.techdocs manifest).",
             "# Debian 12 packages (installed, or apt-get download + dpkg-deb -x for postgresql-doc-15, git-doc, bash-doc, "
             "tcl8.6-doc, texlive-fonts-recommended-doc, texlive-science-doc, nginx-doc); PyPI distributions' METADATA.",
             "format\tpackage\tversion\toriginal\tlicence\tquestions"]
    for line in questions.read_text().splitlines():
        doc = json.loads(line)
        m = meta[doc["file"]]
        answerable = sum(1 for row in doc["rows"] if row["answer_start"] >= 0)
        fields = [m["kind"], m["package"], m["version"], m["original"], m["licence"][:200], str(answerable)]
        lines.append("\t".join(re.sub(r"\s+", " ", f).strip() for f in fields))  # some licences are whole texts
    out.write_text("\n".join(lines) + "\n")


@app.command()
def sample(path: Path = typer.Option(Path("/work/techdocs/questions.jsonl")), n: int = 30, seed: int = 0) -> None:
    """Print a random sample of questions with their answers (to read what the generator makes)."""
    rows = [(d["file"], r) for line in path.read_text().splitlines() for d in [json.loads(line)] for r in d["rows"]]
    for file, row in random.Random(seed).sample(rows, min(n, len(rows))):
        print(f"[{row['kind']}] {file}\n  Q: {row['question']}\n  A: {row['answer_text'] or '(none)'}")


if __name__ == "__main__":
    app()
