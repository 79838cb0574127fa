"""Which library keeps the right text?  Extractors compared on the gold set's HTML and PDF files.

For each file and extractor: the share of the gold questions' evidence strings found in the
extracted text (SQuAD-normalised containment, as `rag eval` matches evidence), the share of
known page-chrome strings that leaked in, and the time.  Candidates that are not dependencies
of the service (trafilatura) are imported only if installed.

    python eval/realdocs/compare_extractors.py > eval/realdocs/extractors.md
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

from rag.evaluation.gold import contains

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
# Page furniture that must not reach the index (navigation, theme menus, running heads).
CHROME = {
    "python-json.html": ["Table of Contents", "Previous topic", "Next topic", "This Page", "Report a Bug", "Show Source", "Navigation"],
    "sqlite-datatypes.html": ["Small. Fast. Reliable.", "Search", "Download", "Support"],
    "sqlite-datefunc.html": ["Small. Fast. Reliable.", "Search", "Download", "Support"],
    "fancyvrb-manual.pdf": ["4 VERBATIM ENVIRONMENTS"],
    "mnras-guide.pdf": ["MNRAS 000, 1–10 (2020)", "MNRAS 000 , 1–10 (2020)"],
}


def _html_ours(data: bytes) -> str:
    from rag.parsing.html import parse_html

    return parse_html(data.decode("utf-8")).text


def _html_soup_blocks(data: bytes) -> str:
    """The previous extractor: every block element's own text, only script/style/nav dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data.decode("utf-8"), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "head"]):
        tag.decompose()
    return "\n\n".join(" ".join(tag.get_text(" ").split()) for tag in soup.find_all(["p", "h1", "h2", "h3", "h4", "li", "td", "th", "pre", "dd", "dt"]))


def _html_trafilatura(data: bytes) -> str:
    import trafilatura

    return trafilatura.extract(data.decode("utf-8"), include_tables=True, include_formatting=False, favor_recall=True) or ""


def _pdf_ours(data: bytes) -> str:
    from rag.parsing.pdf import parse_pdf

    return parse_pdf(data).text


def _pdf_pypdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def _pdf_pypdfium2(data: bytes) -> str:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    return "\n\n".join(page.get_textpage().get_text_range() for page in document)


EXTRACTORS = {
    ".html": {"ours (main content + rules, bs4)": _html_ours, "previous (bs4 block text)": _html_soup_blocks, "trafilatura 2.x": _html_trafilatura},
    ".pdf": {"ours (pdfplumber, layout)": _pdf_ours, "previous (pypdf extract_text)": _pdf_pypdf, "pypdfium2 get_text_range": _pdf_pypdfium2},
}


def main() -> None:
    gold = [json.loads(line) for line in (HERE / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    print("| file | extractor | evidence kept | chrome leaked | seconds |")
    print("|---|---|---|---|---|")
    totals: dict[str, list[float]] = {}
    for path in sorted(FILES.iterdir()):
        extractors = EXTRACTORS.get(path.suffix)
        if not extractors:
            continue
        evidence = [g["evidence"] for g in gold if g.get("doc") == path.name and g.get("evidence")]
        chrome = CHROME.get(path.name, [])
        for name, extract in extractors.items():
            try:
                started = time.perf_counter()
                text = extract(path.read_bytes())
                seconds = time.perf_counter() - started
            except ImportError:
                continue
            kept = sum(contains(text, e) for e in evidence)
            leaked = sum(c in text for c in chrome)
            totals.setdefault(f"{path.suffix} {name}", []).append(kept / max(1, len(evidence)))
            print(f"| {path.name} | {name} | {kept}/{len(evidence)} | {leaked}/{len(chrome)} | {seconds:.2f} |")
    print()
    print("| format, extractor | mean evidence kept |")
    print("|---|---|")
    for name, shares in totals.items():
        print(f"| {name} | {100 * sum(shares) / len(shares):.0f}% |")


if __name__ == "__main__":
    main()
