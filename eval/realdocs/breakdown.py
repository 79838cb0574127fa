"""Per-format and per-tag figures from a ``rag eval --report DIR`` run on eval/realdocs/gold.jsonl.

    python eval/realdocs/breakdown.py eval/results/realdocs-before [--index INDEX_DIR]

Reads DIR/diagnostics.jsonl (one record per question) and the gold file's tags, and prints
Markdown tables: EM/F1 on the answerable questions, recall@5 (gold evidence in a top-5 passage),
the right-paragraph rate (answerable questions whose answer cites a paragraph holding the
evidence, over all answerable questions), citation accuracy (the same over the answers given)
and unanswerable questions answered, per format and per ``crosses:`` tag.  With --index, also the
paragraph and passage counts per document from that index (its CURRENT version).
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _row(name: str, recs: list[dict]) -> str:
    ans = [r for r in recs if r["answerable"]]
    una = [r for r in recs if not r["answerable"]]
    if ans:
        em = 100 * sum(r["em"] for r in ans) / len(ans)
        f1 = 100 * sum(r["f1"] for r in ans) / len(ans)
        r5 = 100 * sum(1 for r in ans if r["relevant_ranks"] and min(r["relevant_ranks"]) <= 5) / len(ans)
        right = 100 * sum(1 for r in ans if r.get("citation_correct") is True) / len(ans)
        given = [r for r in ans if not r["abstained"]]
        cit = f"{100 * sum(1 for r in given if r.get('citation_correct')) / len(given):.0f}% of {len(given)}" if given else "-"
        cells = [f"{len(ans)}", f"{em:.1f}", f"{f1:.1f}", f"{r5:.0f}%", f"{right:.0f}%", cit]
    else:
        cells = ["0", "-", "-", "-", "-", "-"]
    answered = sum(1 for r in una if not r["abstained"])
    cells.append(f"{answered} of {len(una)}" if una else "-")
    return f"| {name} | " + " | ".join(cells) + " |"


HEADER = ("| {} | answerable | EM | F1 | recall@5 | right paragraph | citation accuracy (answers given) | unanswerable answered |\n"
          "|---|---|---|---|---|---|---|---|")


def breakdown(report: Path, gold: Path = HERE / "gold.jsonl") -> str:
    records = {r["id"]: r for r in _load(report / "diagnostics.jsonl")}
    golds = {g["id"]: g for g in _load(gold)}
    by_format: dict[str, list[dict]] = collections.defaultdict(list)
    by_tag: dict[str, list[dict]] = collections.defaultdict(list)
    by_doc: dict[str, list[dict]] = collections.defaultdict(list)
    for qid, rec in records.items():
        tags = golds[qid].get("tags", [])
        for t in tags:
            if t.startswith("format:"):
                by_format[t[7:]].append(rec)
            elif t.startswith("crosses:") or t in ("man-option", "hyphenation"):
                by_tag[t].append(rec)
        by_doc[golds[qid]["doc"]].append(rec)
    out = [HEADER.format("format")]
    out += [_row(f, by_format[f]) for f in ("txt", "md", "html", "pdf", "docx", "pptx") if f in by_format]
    out.append(_row("**all**", list(records.values())))
    out += ["", HEADER.format("tag")] + [_row(t, by_tag[t]) for t in sorted(by_tag)]
    out += ["", HEADER.format("document")] + [_row(d, by_doc[d]) for d in sorted(by_doc)]
    return "\n".join(out)


def index_counts(index: Path) -> str:
    """Paragraphs and passages per live document, read from the index's store.sqlite."""
    import sqlite3

    with sqlite3.connect(f"file:{index / 'store.sqlite'}?mode=ro", uri=True) as conn:
        documents = conn.execute(
            "SELECT d.document_id, (SELECT COUNT(*) FROM paragraphs p WHERE p.generation = d.generation), d.passages "
            "FROM documents d WHERE d.removed IS NULL ORDER BY d.document_id").fetchall()
    rows = ["| document | paragraphs | passages |", "|---|---|---|"]
    rows += [f"| {d} | {par} | {pas} |" for d, par, pas in documents]
    rows.append(f"| **all ({len(documents)} documents)** | {sum(r[1] for r in documents)} | {sum(r[2] for r in documents)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--gold", type=Path, default=HERE / "gold.jsonl")
    parser.add_argument("--index", type=Path)
    args = parser.parse_args()
    print(breakdown(args.report, args.gold))
    if args.index:
        print()
        print(index_counts(args.index))


if __name__ == "__main__":
    main()
