"""Issue 23, requirement 2: PDFs are read by pdfium (pypdfium2) feeding our layout code, ~7x the
pages/s of pdfplumber, and the layout comes out the same: the same blocks from both engines on
small PDFs, the same character boxes on turned and scaled text, at least the evidence kept on
the eval/realdocs PDFs, the parse-time budget kept inside a page, and threads taking turns."""
from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from rag.errors import DocumentTooLarge
from rag.evaluation.gold import contains
from rag.parsing.pdf import parse_pdf
from support import column as _column
from support import make_pdf as _pdf

REALDOCS = Path(__file__).resolve().parent.parent / "eval" / "realdocs"


def _paper() -> bytes:
    header = [(250, 760, 9, "Journal of Tests", False)]
    page1 = header + [(150, 700, 18, "A Study of Columns", False), (300, 40, 9, "1", False)]
    page1 += _column(72, 640, ["The left column starts here and it", "talks about the first topic in", "detail, with enough words for a"])
    page1 += [(72, 600, 10, "Methods", True)]
    page1 += _column(72, 585, ["We measured the infor-", "mation flow with care and the", "result was clear."])
    page1 += _column(330, 640, ["The right column is read after the", "left one, never interleaved with", "it line by line at all."])
    page1 += [(72, 70, 7, "1 The counts were made at dawn.", False)]
    page2 = header + [(300, 40, 9, "2", False)] + _column(72, 700, ["exactly, which ends the sentence.", "A new paragraph on page two."])
    for i, code in enumerate(["\\\\begin{Verbatim}", "  First verbatim line.", "\\\\end{Verbatim}"]):
        page2 += [(60, 640 - 12 * i, 6, str(i + 1), False), (72, 640 - 12 * i, 10, code, "mono")]
    return _pdf([page1, page2], title="")


def _card() -> bytes:
    page = [(250, 760, 14, "Shell Reference Card", False)]
    for x, tool in [(20, "cat"), (220, "apt"), (420, "git")]:
        page.append((x, 730, 9, f"{tool.upper()} Commands", True))
        for r in range(12):
            page += [(x, 712 - 11 * r, 7, f"{tool} op{r}", False), (x + 50, 712 - 11 * r, 7, f"Runs the {tool} step number {r}.", False)]
    return _pdf([page], title="")


def _blocks(data: bytes, engine: str) -> list[tuple]:
    document = parse_pdf(data, engine=engine)
    return [(b.kind, b.level, document.text[b.start:b.end], b.pages, b.bboxes) for b in document.blocks]


@pytest.mark.parametrize("build", [_paper, _card])
def test_both_engines_give_the_same_blocks(build):
    data = build()
    ours, before = _blocks(data, "pdfium"), _blocks(data, "pdfplumber")
    assert [b[:4] for b in ours] == [b[:4] for b in before]
    for (*_, boxes), (*_, old_boxes) in zip(ours, before):
        assert all(abs(x - y) <= 0.15 for box, old in zip(boxes, old_boxes, strict=True) for x, y in zip(box, old, strict=True))


def _turned_and_scaled() -> bytes:
    """One page of text set every way pdfminer's boxes depend on, on each /Rotate."""
    body = ("BT /F1 12 Tf 72 700 Td (Hello world) Tj ET\nBT /F1 1 Tf 10 0 0 10 72 650 Tm (Scaled Tm) Tj ET\n"
            "q 2 0 0 2 0 0 cm BT /F1 8 Tf 36 300 Td (Cm scaled) Tj ET Q\nBT /F1 10 Tf 0 1 -1 0 300 400 Tm (Turned text) Tj ET\n"
            "BT /F1 10 Tf 150 Tz 72 500 Td (Wide Tz) Tj ET\nBT /F1 10 Tf 5 Ts 72 480 Td (Risen) Tj ET\nBT /F1 10 Tf 2 Tc 72 460 Td (Spaced) Tj ET\n")
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for rotate in (0, 90, 180, 270):
        objects.append(f"<< /Length {len(body)} >>\nstream\n{body}endstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Rotate {rotate} /Contents {len(objects)} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode() + b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets))
    out.write(f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_character_boxes_are_pdfminers_on_turned_pages_and_scaled_text():
    import pdfplumber
    import pypdfium2
    import pypdfium2.raw as raw

    from rag.parsing.pdf_chars import page_chars

    data = _turned_and_scaled()
    document = pypdfium2.PdfDocument(data)
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages):
            ours, width, height = page_chars(document[number], raw)
            assert (width, height) == (float(page.width), float(page.height))
            assert len(ours) == len(page.chars) == 58
            key = lambda c: (c["text"], round(c["x0"]), round(c["top"]))  # noqa: E731 - pdfium orders a turned page's runs its own way
            for mine, theirs in zip(sorted(ours, key=key), sorted(page.chars, key=key), strict=True):
                assert mine["text"] == theirs["text"] and mine["upright"] == theirs["upright"]
                assert all(abs(mine[k] - theirs[k]) < 0.01 for k in ("x0", "x1", "top", "bottom", "size")), (mine, theirs)
    document.close()


def test_words_are_pdfplumbers_from_the_same_characters():
    """dedupe and extract_words are pdfplumber's dedupe_chars and extract_words (without the
    quadratic sort), on every page of the reference card and on jittered duplicates."""
    import random

    import pypdfium2
    import pypdfium2.raw as raw
    from pdfplumber.utils import dedupe_chars
    from pdfplumber.utils import extract_words as pdfplumber_words

    from rag.parsing.pdf_chars import dedupe, extract_words, page_chars

    def same_words(chars: list[dict], y_tolerance: float) -> bool:
        ours = extract_words(chars, 0.15, y_tolerance)
        theirs = pdfplumber_words(chars, x_tolerance_ratio=0.15, y_tolerance=y_tolerance, return_chars=True)
        return [(w["text"], w["x0"], w["top"], w["chars"]) for w in ours] == [(w["text"], w["x0"], w["top"], w["chars"]) for w in theirs]

    pages = []
    for data in ((REALDOCS / "files" / "debian-refcard.pdf").read_bytes(), _turned_and_scaled()):
        document = pypdfium2.PdfDocument(data)
        pages += [page_chars(document[i], raw)[0] for i in range(len(document))]
        document.close()
    rng = random.Random(23)
    for _ in range(100):
        pages.append([{"text": rng.choice("ab"), "fontname": "F", "size": 10.0, "upright": True, "x0": rng.choice([10, 10.5, 11.2, 30]) + rng.random(),
                       "x1": 40.0, "top": rng.choice([100, 100.7, 101.5, 120]) + rng.random(), "bottom": 130.0} for _ in range(rng.randrange(1, 40))])
    for chars in pages:
        for c in chars:
            c["doctop"], c["height"] = c["top"], c["bottom"] - c["top"]
        unique = dedupe(chars)
        assert [id(c) for c in unique] == [id(c) for c in dedupe_chars(chars)]
        assert same_words(unique, 3) and same_words(unique, 1)


def test_realdocs_evidence_is_kept():
    """Evidence kept on 2026-12-08 with pdfplumber: 5/8, 13/14, 10/12 (eval/realdocs/extractors.md)."""
    import json

    gold = [json.loads(line) for line in (REALDOCS / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    for name, before in {"debian-refcard.pdf": 5, "fancyvrb-manual.pdf": 13, "mnras-guide.pdf": 10}.items():
        document = parse_pdf((REALDOCS / "files" / name).read_bytes())
        evidence = [g["evidence"] for g in gold if g.get("doc") == name and g.get("evidence")]
        assert sum(contains(document.text, e) for e in evidence) >= before, name
        for block in document.blocks:
            for page, x0, top, x1, bottom in block.bboxes:  # PDF points, top-left origin, on the page
                assert page in block.pages and -1 <= x0 <= x1 <= 843 and -1 <= top <= bottom <= 793
        if name == "fancyvrb-manual.pdf":
            # pdfium hands out a ligature's letters at one spot; the second "f" is no duplicate
            assert "It offers six kinds of extended functionality" in document.text and "efect" not in document.text


def test_the_time_budget_stops_a_page_of_many_words_midway():
    lines = [" ".join(f"w{i * 20 + j}" for j in range(20)) for i in range(60_000 // 20)]
    data = _pdf([[(20, 780 - 0.2 * k, 0.2, text, False) for k, text in enumerate(lines)]])
    with pytest.raises(DocumentTooLarge, match=r"more than 0 s at page 1 of 1 \(RAG_MAX_PARSE_SECONDS\)"):
        parse_pdf(data, time_budget_s=0.2)


def test_threads_take_turns_in_pdfium():
    data = [_paper(), _card()]
    expected = [parse_pdf(d).text for d in data]
    results: dict[int, str] = {}

    def parse(i: int) -> None:
        results[i] = parse_pdf(data[i % 2]).text

    threads = [threading.Thread(target=parse, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(6)] == expected * 3
