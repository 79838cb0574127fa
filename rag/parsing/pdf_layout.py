"""A PDF page's words as lines in reading order (words as pdfplumber makes them, with font size and boldness).

A page of two or three columns is found from vertical gutters that (almost) no word crosses;
a full-width row (a title, an abstract, a wide figure) closes the band of columns above it,
which is read column by column, left to right.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from rag.parsing.blocks import PARAGRAPH

# Word gaps are relative to the font size: TeX output has no space characters and 10 pt text
# spaces words ~2.5-3.3 pt apart, which pdfplumber's fixed 3 pt tolerance glues together.
# Share of our words that pdftotext also finds, on the first 8 pages of the two gold PDFs:
# 0.976/0.965 at 0.10-0.15, 0.957/0.963 at 0.2 (justified lines glued: "Thejournal").
X_TOLERANCE_RATIO = 0.15
_FOOTNOTE_MARK = re.compile(r"^[\d*†‡§¶]$")
_UNMAPPED_GLYPH = re.compile(r"\(cid:\d{1,5}\)")
# Typewriter faces (TeX's cmtt/t1xtt/lmmono, DejaVu Sans Mono, Courier, Consolas, Menlo): the
# font code examples and their output are set in.  Subset prefixes ("AHXQGJ+t1xtt") are ignored.
LETTERS_APART_SHARE = 0.15
# A line is code when this share of its characters is typewriter: a reference card's row
# "dpkg -l [names] List packages." (half typewriter) stays prose.
MONO_SHARE = 0.8
_MONOSPACED = re.compile(r"mono|courier|consol|menlo|(?:^|\+)(?:cm|ec|sf|t1x|r?tx|lm|pcr)?tt\d*(?:$|[-,.])|typewriter", re.IGNORECASE)


@dataclass
class Line:
    page: int
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    bold: bool
    text: str
    column: int = 0  # 0 full width / single column, else 1, 2, 3 from the left
    mono: bool = False  # most of its characters in a typewriter font: code or an example's output
    words: tuple[tuple[float, float, str], ...] = ()  # (x0, x1, text) of each word, left to right
    kind: str = PARAGRAPH
    col_x0: float = 0.0
    col_x1: float = 0.0


def page_lines(read_words: Callable[[float], list[dict]], width: float, number: int) -> list[Line]:
    """A page's lines in reading order from ``read_words(y_tolerance)``: its words (pdfplumber's
    extract_words dicts with their chars), characters within y_tolerance points of a line's top
    taken into it."""
    # Font attributes come from each word's characters: asking extract_words to split on them
    # cuts "LaTeX" (a smaller raised A) into "L A TEX".
    words = read_words(3)
    if _letters_apart(words):
        # pdfplumber groups characters into lines by a chain of tops 3 pt apart; a reference card's
        # cells, centred on each other at half-line offsets, chain the whole page into one "line"
        # whose characters interleave, so every letter became a word ("I n t e r f a c e").
        # Tighter grouping keeps a raised footnote mark apart, so it is used only where needed.
        words = read_words(1)
    if not words:
        return []
    for word in words:
        chars = word.pop("chars")
        word["size"] = _most_common([round(c["size"], 1) for c in chars])
        word["fontname"] = _most_common([c["fontname"] for c in chars])
        # A footnote mark set small after a word ("website⁴.") is not part of it.
        kept = [
            c for i, c in enumerate(chars)
            if not (i and c["size"] < 0.85 * word["size"] and _FOOTNOTE_MARK.match(c["text"]) and chars[i - 1]["text"].isalpha()
                    and (i + 1 == len(chars) or not chars[i + 1]["text"].isalnum()))
        ]
        if len(kept) < len(chars):
            word["text"] = "".join(c["text"] for c in kept)
    gutters = _gutters(words, width)
    rows: list[list[dict]] = []
    for word in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
        if rows and abs(word["top"] - rows[-1][0]["top"]) <= 0.5 * max(word["size"], 1):
            rows[-1].append(word)
        else:
            rows.append([word])
    # Reading order by bands: a full-width row (title, abstract, a wide figure) closes the
    # multi-column band above it, which is read column by column, left to right.
    edges = [0.0, *gutters, width]
    ordered: list[Line] = []
    columns: list[list[Line]] = [[] for _ in range(len(gutters) + 1)] if gutters else []
    for row in rows:
        row.sort(key=lambda w: w["x0"])
        for w in row:
            w["text"] = _UNMAPPED_GLYPH.sub("", w["text"])
        row = [w for w in row if w["text"].strip()]
        if not row:
            continue
        if not gutters or any(_spans(row, gutter, width) for gutter in gutters):
            ordered += [line for column in columns for line in column]
            columns = [[] for _ in columns]
            ordered.append(_line(row, number, 0, 0.0, width))
            continue
        # Each word goes to the column holding its middle (a word jutting over a gutter is kept;
        # one left of the page's edge is not shown).
        parts: dict[int, list[dict]] = {}
        for w in row:
            middle = (w["x0"] + w["x1"]) / 2
            if middle >= 0:
                parts.setdefault(bisect_right(gutters, middle), []).append(w)
        for i, part in sorted(parts.items()):
            columns[i].append(_line(part, number, i + 1, edges[i], edges[i + 1]))
    return ordered + [line for column in columns for line in column]


def _most_common(values: list):
    """The value most of ``values`` have (the first seen among equals); most words are one font."""
    first = values[0]
    return first if values.count(first) == len(values) else Counter(values).most_common(1)[0][0]


def _letters_apart(words: list[dict]) -> bool:
    """Are a page's words mostly single letters?  Prose has 2-3% ("a", "I")."""
    return len(words) >= 50 and sum(1 for w in words if len(w["text"]) == 1 and w["text"].isalpha()) > LETTERS_APART_SHARE * len(words)


def _gutters(words: list[dict], width: float) -> list[float]:
    """The column gutters of a page: the two-column one (_gutter), or, on a three-column page (a
    reference card in landscape), two gutters that leave each column at least 22% of the width
    and 15% of the words.  A single gutter read a reference card's first two columns as one,
    row by row interleaved ("Important Shell Commands APT")."""
    three = _three_columns(words, width)
    if three:
        return three
    gutter = _gutter(words, width)
    return [gutter] if gutter is not None else []


def _three_columns(words: list[dict], width: float) -> list[float]:
    if len(words) < 60:
        return []

    clear = _crossing(words)

    picks = []
    for low, high in ((0.22, 0.45), (0.55, 0.78)):
        # The middle of the widest clear strip: a gap between two words that happens to line up
        # over a few rows is narrower than the space between columns.
        xs = [width * (low + (high - low) * step / 80) for step in range(81)]
        crossing = [clear(x) for x in xs]
        fewest = min(crossing)
        if fewest > 0.02 * len(words):
            return []
        runs = [[x for x, _ in run] for clear_run, run in groupby(zip(xs, crossing), key=lambda p: p[1] == fewest) if clear_run]
        widest = max(runs, key=len)
        picks.append((widest[0] + widest[-1]) / 2)
    edges = [0.0, *picks, width]
    counts = [sum(1 for w in words if a <= w["x0"] and w["x1"] <= b) for a, b in zip(edges, edges[1:])]
    if min(counts) < 0.15 * len(words):
        return []
    # A two-column page has no clear line in the left or right third of the text: one that does
    # is a third column only if the middle column is text too (not a gap between two columns).
    middle = [w for w in words if picks[0] <= w["x0"] and w["x1"] <= picks[1]]
    return picks if len({round(w["top"]) for w in middle}) >= 10 else []


def _crossing(words: list[dict]) -> Callable[[float], int]:
    """x -> how many words have x0 < x < x1, by bisection (the 193 vertical lines tried on a
    page counted every word each: 13% of the layout's time)."""
    starts, ends = sorted(w["x0"] for w in words), sorted(w["x1"] for w in words)
    empty = Counter(w["x0"] for w in words if w["x0"] == w["x1"])  # x0 == x1 == x: counted in neither

    def crossing(x: float) -> int:
        return bisect_left(starts, x) - bisect_right(ends, x) + empty[x]

    return crossing


def _spans(row: list[dict], gutter: float, width: float) -> bool:
    """A full-width row: it reaches well into both halves, and a word straddles the gutter or
    the words on both sides are only a word gap apart (justified text whose gap happens to
    fall on the gutter).  A column's equation jutting over the gutter is not one."""
    if min(w["x0"] for w in row) > gutter - 0.1 * width or max(w["x1"] for w in row) < gutter + 0.1 * width:
        return False
    if any(w["x0"] < gutter < w["x1"] for w in row):
        return True
    left = [w for w in row if w["x1"] <= gutter]
    right = [w for w in row if w["x0"] >= gutter]
    if not left or not right:
        return False
    return min(w["x0"] for w in right) - max(w["x1"] for w in left) < 1.0 * max(w["size"] for w in row)


def _line(words: list[dict], page: int, column: int, col_x0: float, col_x1: float) -> Line:
    sizes: Counter[float] = Counter()
    bold = mono = 0
    for w in words:
        sizes[round(w["size"], 1)] += len(w["text"])
        bold += len(w["text"]) if re.search(r"bold|black|heavy|cmbx", w["fontname"], re.IGNORECASE) else 0
        mono += len(w["text"]) if _MONOSPACED.search(w["fontname"]) else 0
    chars = sum(sizes.values()) or 1
    return Line(page, min(w["x0"] for w in words), max(w["x1"] for w in words), min(w["top"] for w in words),
                 max(w["bottom"] for w in words), sizes.most_common(1)[0][0], bold > chars / 2,
                 " ".join(w["text"] for w in words), column, mono=mono > MONO_SHARE * chars,
                words=tuple((w["x0"], w["x1"], w["text"]) for w in words), col_x0=col_x0, col_x1=col_x1)


def _gutter(words: list[dict], width: float) -> float | None:
    """The x of a two-column gutter: a vertical line in the middle third that at most 4% of
    the words cross, with at least 20% of the words (and 20 words) on each side."""
    best, best_crossing = None, len(words)
    crossed = _crossing(words)
    for step in range(31):
        x = width * (0.35 + 0.3 * step / 30)
        crossing = crossed(x)
        if crossing < best_crossing:
            best, best_crossing = x, crossing
    if best is None or best_crossing > 0.04 * len(words):
        return None
    left = sum(1 for w in words if w["x1"] <= best)
    right = sum(1 for w in words if w["x0"] >= best)
    return best if min(left, right) >= max(0.2 * len(words), 20) else None
