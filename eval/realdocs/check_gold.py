"""Check eval/realdocs/gold.jsonl against the files in eval/realdocs/files/.

For every answerable question, the SQuAD-normalised evidence and first answer must occur in a
whitespace-joined rendering of what a reader SEES in the document, and the first answer must
occur in the evidence.  Renderings, independent of the rag package's ingestion:

  .txt   the file as it is; also with groff's line-end hyphenation (U+2010) undone
  .md    rendered with markdown-it-py (CommonMark + GFM tables/strikethrough), visible HTML text
  .html  visible text of <body> (script, style, noscript, template dropped)
  .pdf   ``pdftotext`` (poppler-utils) in reading order; also a variant with line-end
         hyphenation undone and running headers/footers/page numbers (lines repeated on many
         pages once digits are masked, and bare numbers at a page's top or bottom) removed
  .docx  python-docx: paragraphs and table cells in body order
  .pptx  python-pptx: text frames and table cells, slide by slide

Only rag.evaluation.gold.contains/normalize is borrowed (read-only) so that the check uses the
same matching as ``rag eval``.

    python eval/realdocs/check_gold.py                 # check, exit 1 on any problem
    python eval/realdocs/check_gold.py --dump /tmp/x   # also write each rendering to /tmp/x/NAME.txt
    python eval/realdocs/check_gold.py --stats         # question counts by tag
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repo root, for rag.evaluation.gold

from rag.evaluation.gold import contains  # noqa: E402 - the same matching as `rag eval`

FILES = HERE / "files"
GOLD = HERE / "gold.jsonl"
ALLOWED_TAGS = {"crosses:wrap", "crosses:page", "crosses:list", "crosses:table", "crosses:after-heading"}


BLOCK_TAGS = ["p", "div", "li", "ul", "ol", "dl", "dt", "dd", "td", "th", "tr", "table", "thead", "tbody",
              "caption", "pre", "blockquote", "section", "article", "nav", "header", "footer", "aside",
              "h1", "h2", "h3", "h4", "h5", "h6", "hr", "details", "summary", "figure", "figcaption", "form"]


def _visible_html(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(BLOCK_TAGS):
        tag.insert_before("\n")
        tag.append("\n")
    root = soup.body or soup
    return root.get_text("")


def render_md(path: Path) -> list[str]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return [_visible_html(md.render(path.read_text(encoding="utf-8")))]


def render_html(path: Path) -> list[str]:
    return [_visible_html(path.read_text(encoding="utf-8", errors="replace"))]


def render_txt(path: Path) -> list[str]:
    # groff marks the hyphens it inserts to break words at line ends as U+2010 (man pages);
    # a reader sees the joined word, so a variant with those joined is checked too.
    text = path.read_text(encoding="utf-8", errors="replace")
    return [text, re.sub(r"(\w)\u2010\n\s*(\w)", r"\1\2", text)]


def _pdf_pages(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = out.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def _dehyphenate(text: str) -> str:
    return re.sub(r"(\w)[-\u00ad]\n\s*(\w)", r"\1\2", text)


def _strip_running(pages: list[str]) -> list[str]:
    masked = collections.Counter()
    for page in pages:
        for line in {re.sub(r"\d+", "#", l.strip()) for l in page.splitlines() if l.strip()}:
            masked[line] += 1
    repeated = {l for l, n in masked.items() if n >= max(3, len(pages) // 5)}
    cleaned = []
    for page in pages:
        lines = [l for l in page.splitlines() if l.strip()]
        lines = [l for l in lines if re.sub(r"\d+", "#", l.strip()) not in repeated]
        while lines and re.fullmatch(r"\s*\d{1,3}\s*", lines[-1]):
            lines.pop()
        while lines and re.fullmatch(r"\s*\d{1,3}\s*", lines[0]):
            lines.pop(0)
        cleaned.append("\n".join(lines))
    return cleaned


def render_pdf(path: Path) -> list[str]:
    pages = _pdf_pages(path)
    raw = "\n".join(pages)
    clean = "\n".join(_strip_running(pages))
    return [raw, _dehyphenate(raw), _dehyphenate(clean)]


def render_docx(path: Path) -> list[str]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    parts = []
    for child in document.element.body.iterchildren():
        if child.tag.endswith("}p"):
            parts.append(Paragraph(child, document).text)
        elif child.tag.endswith("}tbl"):
            for row in Table(child, document).rows:
                parts.extend(cell.text for cell in row.cells)
    return ["\n".join(parts)]


def render_pptx(path: Path) -> list[str]:
    from pptx import Presentation

    parts = []
    for slide in Presentation(str(path)).slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                parts.extend(cell.text for row in shape.table.rows for cell in row.cells)
    return ["\n".join(parts)]


RENDER = {".txt": render_txt, ".md": render_md, ".html": render_html, ".htm": render_html,
          ".pdf": render_pdf, ".docx": render_docx, ".pptx": render_pptx}


def renderings(path: Path) -> list[str]:
    return [" ".join(text.split()) for text in RENDER[path.suffix.lower()](path)]


def check(gold_path: Path = GOLD, dump: Path | None = None) -> list[str]:
    problems: list[str] = []
    cache: dict[str, list[str]] = {}
    files = {p.name: p for p in FILES.iterdir() if p.suffix.lower() in RENDER}
    if dump:
        dump.mkdir(parents=True, exist_ok=True)
        for name, path in sorted(files.items()):
            cache[name] = renderings(path)
            (dump / f"{name}.txt").write_text("\n\n=====\n\n".join(cache[name]), encoding="utf-8")
    seen: set[str] = set()
    for number, line in enumerate(gold_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{gold_path.name}:{number}"
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: bad JSON ({exc.msg})")
            continue
        qid = q.get("id")
        where += f" [{qid}]"
        if qid in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(qid)
        doc = q.get("doc")
        if doc not in files:
            problems.append(f"{where}: doc {doc!r} is not a file in {FILES}")
            continue
        tags = q.get("tags") or []
        fmt = "format:" + Path(doc).suffix.lower().lstrip(".")
        if fmt not in tags:
            problems.append(f"{where}: tags lack {fmt}")
        bad = [t for t in tags if t.startswith("crosses:") and t not in ALLOWED_TAGS]
        if bad:
            problems.append(f"{where}: unknown tag(s) {bad}")
        answers = q.get("answers")
        if not isinstance(answers, list):
            problems.append(f"{where}: answers must be a list")
            continue
        if not answers:
            if q.get("evidence"):
                problems.append(f"{where}: an unanswerable question carries evidence")
            if "unanswerable" not in tags:
                problems.append(f"{where}: unanswerable question not tagged 'unanswerable'")
            continue
        evidence = q.get("evidence") or ""
        if not evidence:
            problems.append(f"{where}: answerable question without evidence")
            continue
        words = len(evidence.split())
        if not 3 <= words <= 30:
            problems.append(f"{where}: evidence has {words} words (want about 5-25)")
        if not contains(evidence, answers[0]):
            problems.append(f"{where}: first answer {answers[0]!r} is not inside the evidence")
        texts = cache.setdefault(doc, renderings(files[doc]))
        if not any(contains(t, evidence) for t in texts):
            problems.append(f"{where}: evidence not found in {doc}: {evidence!r}")
        if not any(contains(t, answers[0]) for t in texts):
            problems.append(f"{where}: first answer not found in {doc}: {answers[0]!r}")
    return problems


def stats(gold_path: Path = GOLD) -> str:
    rows = [json.loads(l) for l in gold_path.read_text(encoding="utf-8").splitlines() if l.strip()]
    tags = collections.Counter(t for r in rows for t in r.get("tags") or [])
    docs = collections.Counter(r["doc"] for r in rows)
    answerable = sum(1 for r in rows if r["answers"])
    out = [f"{len(rows)} questions, {answerable} answerable, {len(rows) - answerable} unanswerable", "", "by tag:"]
    out += [f"  {t:28s} {n}" for t, n in sorted(tags.items())]
    out += ["", "by document:"] + [f"  {d:32s} {n}" for d, n in sorted(docs.items())]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", nargs="?", type=Path, default=GOLD)
    parser.add_argument("--dump", type=Path, help="write each file's rendering(s) here")
    parser.add_argument("--stats", action="store_true", help="print question counts by tag and document")
    args = parser.parse_args()
    problems = check(args.gold, args.dump)
    for p in problems:
        print(p)
    if args.stats or not problems:
        print(stats(args.gold))
    print(f"{'FAIL' if problems else 'OK'}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
