"""Which library keeps the right text?  Extractors compared on the gold set's HTML and PDF files.

For each file and extractor: the share of the gold questions' evidence strings found in the
extracted text (SQuAD-normalised containment, as `rag eval` matches evidence), the share of
known page-chrome strings that leaked in, and the time (the median of ``--repeat`` runs, the
extractors taking turns, so that a busy machine slows them alike); PDFs also get pages/s over
all of them.  Candidates that are not dependencies of the service (trafilatura) are imported
only if installed.

    python eval/realdocs/compare_extractors.py [--repeat 3] [--only pdf] > table.md
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
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

    return parse_pdf(data, engine="pdfium").text


def _pdf_ours_pdfplumber(data: bytes) -> str:
    from rag.parsing.pdf import parse_pdf

    return parse_pdf(data, engine="pdfplumber").text


def _pdf_pdfplumber_text(data: bytes) -> str:
    """pdfplumber's own reading without our layout: pdfminer's interpreter, no layout analysis."""
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n\n".join(page.extract_text() or "" for page in pdf.pages)


def _pdf_pdfminer_laparams(data: bytes) -> str:
    """pdfminer's layout analysis, tuned for running text (no figure analysis, reading order by
    text boxes): the other route the issue named."""
    from pdfminer.high_level import extract_text
    from pdfminer.layout import LAParams

    return extract_text(io.BytesIO(data), laparams=LAParams(line_margin=0.5, char_margin=2.0, word_margin=0.15, boxes_flow=0.5, all_texts=False))


def _pdf_pypdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def _pdf_pypdfium2(data: bytes) -> str:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    return "\n\n".join(page.get_textpage().get_text_range() for page in document)


EXTRACTORS = {
    ".html": {"ours (main content + rules, bs4)": _html_ours, "previous (bs4 block text)": _html_soup_blocks, "trafilatura 2.x": _html_trafilatura},
    ".pdf": {"ours (pdfium chars, layout)": _pdf_ours, "ours on pdfplumber (before 2026-12-08)": _pdf_ours_pdfplumber,
             "pdfplumber extract_text": _pdf_pdfplumber_text, "pdfminer extract_text (LAParams)": _pdf_pdfminer_laparams,
             "previous (pypdf extract_text)": _pdf_pypdf, "pypdfium2 get_text_range": _pdf_pypdfium2},
}


def _pages(data: bytes) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per file and extractor; the median time is shown")
    parser.add_argument("--only", choices=["html", "pdf"], help="one format")
    args = parser.parse_args()
    gold = [json.loads(line) for line in (HERE / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    print("| file | extractor | evidence kept | chrome leaked | seconds |")
    print("|---|---|---|---|---|")
    totals: dict[str, list[float]] = {}
    pdf_time: dict[str, float] = {}
    pdf_pages = 0
    for path in sorted(FILES.iterdir()):
        extractors = EXTRACTORS.get(path.suffix)
        if not extractors or (args.only and path.suffix != f".{args.only}"):
            continue
        data = path.read_bytes()
        evidence = [g["evidence"] for g in gold if g.get("doc") == path.name and g.get("evidence")]
        chrome = CHROME.get(path.name, [])
        texts: dict[str, str] = {}
        times: dict[str, list[float]] = {}
        for _ in range(max(1, args.repeat)):
            for name, extract in extractors.items():  # interleaved: a busy spell slows all alike
                try:
                    started = time.perf_counter()
                    texts[name] = extract(data)
                    times.setdefault(name, []).append(time.perf_counter() - started)
                except ImportError:
                    continue
        if path.suffix == ".pdf":
            pdf_pages += _pages(data)
        for name, text in texts.items():
            seconds = statistics.median(times[name])
            kept = sum(contains(text, e) for e in evidence)
            leaked = sum(c in text for c in chrome)
            totals.setdefault(f"{path.suffix} {name}", []).append(kept / max(1, len(evidence)))
            if path.suffix == ".pdf":
                pdf_time[name] = pdf_time.get(name, 0.0) + seconds
            print(f"| {path.name} | {name} | {kept}/{len(evidence)} | {leaked}/{len(chrome)} | {seconds:.2f} |")
    print()
    print("| format, extractor | mean evidence kept | pages/s (PDF) |")
    print("|---|---|---|")
    for name, shares in totals.items():
        fmt, _, extractor = name.partition(" ")
        speed = f"{pdf_pages / pdf_time[extractor]:.1f}" if fmt == ".pdf" and pdf_time.get(extractor) else ""
        print(f"| {name} | {100 * sum(shares) / len(shares):.0f}% | {speed} |")


if __name__ == "__main__":
    main()
