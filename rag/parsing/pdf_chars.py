"""A PDF page's words with pdfium (pypdfium2): characters, their boxes and fonts, grouped into words.

pdfplumber read a page through pdfminer's content-stream interpreter in Python and then turned
every character into a dict (0.25-0.8 s a page); pdfium reads it in C (511 pages/s for the
text pages of eval/realdocs), and Python here only asks it for each character.  The words are
made by pdfplumber's steps, checked equal on the same characters (tests/test_pdf_speed_
equivalence.py): duplicate characters (fake bold, overprinting) dropped, characters clustered
into lines by their tops, sorted by x, split at spaces and at gaps over a share of the font size.
Boxes are pdfminer's (checked to 0.01 pt on turned pages and scaled, spaced and risen text): PDF
points, top-left origin, the page's /Rotate applied, each character one em tall from the
baseline's descent.  Deliberate differences: the descent of an embedded font is its program's
(pdfminer took the font descriptor's, 0 in TeX Gyre Termes: a regular word sat 2.6 pt higher
than a bold one on the same baseline, and lines of mixed fonts broke apart); a MediaBox not at
(0, 0) is measured from its own corner (pdfplumber shifted such pages by the offset); a glyph
with no Unicode mapping is dropped (pdfminer wrote "(cid:63)", which page_lines removed anyway).
"""
from __future__ import annotations

import ctypes
import math
import re
import time
from collections.abc import Callable
from itertools import groupby
from typing import Any

# pdfium writes a hyphen that ends a line as U+0002.
_LINE_END_HYPHEN = 2
# The descent (per 1,000 of the size) of the standard fonts a PDF may name without embedding
# them, from their AFM metrics as pdfminer has them; pdfium's stand-in fonts (FreeType's
# Liberation/Foxit faces) sit 0.1-0.5 pt lower, enough to pull a 6 pt line number beside 10 pt
# Courier code (3.3 pt apart at the top in pdfplumber, 2.9 here) into the code's line.
_STANDARD_DESCENTS = {"Courier": -194, "CourierNew": -194, "Helvetica": -207, "Arial": -207, "Times": -217, "TimesNewRoman": -217,
                      "Symbol": 0, "ZapfDingbats": 0}
LIGATURES = {"ﬀ": "ff", "ﬃ": "ffi", "ﬄ": "ffl", "ﬁ": "fi", "ﬂ": "fl", "ﬆ": "st", "ﬅ": "st"}


def _mult(m: tuple, n: tuple) -> tuple:
    """m then n, as PDF matrices (a, b, c, d, e, f) compose."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2, e * a2 + f * c2 + e2, e * b2 + f * d2 + f2)


def page_transform(page) -> tuple[tuple, float, float]:
    """pdfminer's device matrix for the page (its /Rotate and MediaBox origin), the width and the
    height as shown: user-space points become top-left points, as pdfplumber gave them where the
    MediaBox starts at (0, 0) (elsewhere pdfplumber's were shifted by the MediaBox's corner)."""
    x0, y0, x1, y1 = page.get_mediabox()
    rotation = page.get_rotation() % 360
    ctm = {90: (0, -1, 1, 0, -y0, x1), 180: (-1, 0, 0, -1, x1, y1), 270: (0, 1, -1, 0, y1, -x0)}.get(rotation, (1, 0, 0, 1, -x0, -y0))
    width, height = (y1 - y0, x1 - x0) if rotation in (90, 270) else (x1 - x0, y1 - y0)
    return ctm, float(width), float(height)


class PastDeadline(Exception):
    """The page's characters were still being read at the deadline."""


def page_chars(page, raw, deadline: float = math.inf) -> tuple[list[dict], float, float]:
    """The page's characters as pdfplumber's dicts (text, x0, x1, top, bottom, size, fontname,
    upright), in content order; ``raw`` is pypdfium2's raw module.  Past ``deadline``
    (time.monotonic()) it raises PastDeadline: one page of 80,000 tiny words takes ~8 s."""
    ctm, width, height = page_transform(page)
    textpage = page.get_textpage()
    try:
        return _chars(ctypes.cast(textpage.raw, ctypes.c_void_p).value or 0, _bindings(raw), ctm, height, deadline), width, height
    finally:
        textpage.close()


_BOUND: dict[str, Callable[..., Any]] = {}
_P, _I, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float


def _bindings(raw) -> dict[str, Callable[..., Any]]:
    """pypdfium2's functions bound again with plain addresses for pointers: its typed pointers
    cost a cast per character to compare text objects (2.5 us of the ~30 us a character took)."""
    if not _BOUND:
        signatures = {
            "FPDFText_CountChars": (_I, _P), "FPDFText_GetUnicode": (ctypes.c_uint, _P, _I), "FPDFText_IsGenerated": (_I, _P, _I),
            "FPDFText_HasUnicodeMapError": (_I, _P, _I), "FPDFText_GetTextObject": (_P, _P, _I),
            "FPDFText_GetLooseCharBox": (_I, _P, _I, _P), "FPDFText_GetCharOrigin": (_I, _P, _I, _P, _P),
            "FPDFText_GetMatrix": (_I, _P, _I, _P), "FPDFTextObj_GetFont": (_P, _P), "FPDFTextObj_GetFontSize": (_I, _P, _P),
            "FPDFFont_GetBaseFontName": (ctypes.c_size_t, _P, _P, ctypes.c_size_t), "FPDFFont_GetDescent": (_I, _P, _F, _P),
            "FPDFFont_GetGlyphWidth": (_I, _P, ctypes.c_uint32, _F, _P), "FPDFFont_GetIsEmbedded": (_I, _P),
        }
        for name, (restype, *argtypes) in signatures.items():
            address = ctypes.cast(getattr(raw, name), ctypes.c_void_p).value
            if not address:
                raise RuntimeError(f"pdfium has no {name}")
            _BOUND[name] = ctypes.CFUNCTYPE(restype, *argtypes)(address)
    return _BOUND


def _chars(tp: int, f: dict, ctm: tuple, height: float, deadline: float) -> list[dict]:
    get_unicode, is_generated, map_error = f["FPDFText_GetUnicode"], f["FPDFText_IsGenerated"], f["FPDFText_HasUnicodeMapError"]
    text_object, loose_box, char_origin = f["FPDFText_GetTextObject"], f["FPDFText_GetLooseCharBox"], f["FPDFText_GetCharOrigin"]
    rect, xy = (ctypes.c_float * 4)(), (ctypes.c_double * 2)()  # FS_RECTF: left, top, right, bottom
    rect_at, x_at, y_at = ctypes.addressof(rect), ctypes.addressof(xy), ctypes.addressof(xy) + ctypes.sizeof(ctypes.c_double)
    objects: dict[int | None, tuple] = {}  # text object -> what its characters share
    fonts: dict[int | None, tuple[str, float, dict[int, float]]] = {}  # font -> (name, descent per point, advances per point)
    identity = ctm == (1, 0, 0, 1, 0, 0)
    last: tuple = ()
    chars: list[dict] = []

    def shared(obj: int | None, i: int) -> tuple:
        """What a text object's characters share (pdfium gives each its object's matrix): whether
        it is upright on an unturned page, its matrix, the text-space bottom and top of its
        characters (pdfminer's: the descent, and one em above it), its font's name, its font
        and that font's advances."""
        size, matrix, value = ctypes.c_float(), (ctypes.c_float * 6)(), ctypes.c_float()
        font = f["FPDFTextObj_GetFont"](obj)
        if font not in fonts:
            name = ctypes.create_string_buffer(256)
            f["FPDFFont_GetBaseFontName"](font, name, 256)
            f["FPDFFont_GetDescent"](font, 1000.0, ctypes.addressof(value))
            fontname = name.value.decode("utf-8", "replace")
            standard = _STANDARD_DESCENTS.get(re.split(r"[-,]", fontname)[0])
            descent = standard if standard is not None and f["FPDFFont_GetIsEmbedded"](font) == 0 else value.value
            fonts[font] = (fontname, min(0.0, descent / 1000), {})
        fontname, down, advances = fonts[font]
        f["FPDFTextObj_GetFontSize"](obj, ctypes.addressof(size))
        f["FPDFText_GetMatrix"](tp, i, ctypes.addressof(matrix))
        a, b, c, d = matrix[:4]
        em = size.value
        upright = identity and b == 0 and c == 0 and a > 0 and d > 0 and em > 0
        return upright, (a, b, c, d), down * em, (down + 1) * em, em, fontname, font, advances

    def place(char: dict, m: tuple, advance: float, low: float, high: float) -> dict:
        """The character's box: its advance by one em from the descent in text space (pdfminer's
        LTChar), through its matrix, as top-left points."""
        xs: tuple[float, ...] = (m[4] + m[2] * low, m[4] + m[0] * advance + m[2] * high)
        ys: tuple[float, ...] = (m[5] + m[3] * low, m[5] + m[1] * advance + m[3] * high)
        if m[1] or m[2]:
            xs = (*xs, m[4] + m[0] * advance + m[2] * low, m[4] + m[2] * high)
            ys = (*ys, m[5] + m[1] * advance + m[3] * low, m[5] + m[3] * high)
        char.update(x0=min(xs), x1=max(xs), top=height - max(ys), bottom=height - min(ys), size=max(ys) - min(ys),
                    upright=m[0] * m[3] > 0 and m[1] * m[2] <= 0)
        return char

    for i in range(f["FPDFText_CountChars"](tp)):
        if not i % 4096 and time.monotonic() > deadline:
            raise PastDeadline
        code = get_unicode(tp, i)
        # pdfium's own spaces and line breaks (the only characters it generates: 13,709 of the
        # 77,032 on the eval/realdocs PDFs) are no text here; a glyph with no Unicode is dropped.
        if code < 33 and (code == 0 or is_generated(tp, i) == 1) or map_error(tp, i) == 1:
            continue
        if 0xDC00 <= code <= 0xDFFF and chars and "\ud800" <= chars[-1]["text"] <= "\udbff":
            # the second half of a character beyond U+FFFF (pdfium counts UTF-16 units)
            high = ord(chars[-1]["text"])
            chars[-1]["text"] = chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00))
            continue
        text = "-" if code == _LINE_END_HYPHEN else chr(code) if code < 0x110000 else "\ufffd"
        obj = text_object(tp, i)
        info = objects.get(obj)
        if info is None:
            info = objects[obj] = shared(obj, i)
        upright, (a, b, c, d), low, high, em, fontname, font, advances = info
        loose_box(tp, i, rect_at)
        char_origin(tp, i, x_at, y_at)
        ox, oy = xy
        left, top, right, bottom = rect
        # pdfium's loose box reaches to the glyph's outline where that overhangs its advance (an
        # "f", italics): 3,074 of the 43,238 characters of the eval/realdocs PDFs ended > 0.05 pt
        # from pdfminer's box, 603 by > 0.5 pt, enough to glue "of the" into "ofthe".  The font's
        # width for the character is the advance (246 off by > 0.05 pt, 24 by > 0.5 pt, mostly an
        # OpenType font's), unless pdfium maps the character to another code: wider than the box,
        # or under 0.3 of it (an italic "f" is 0.49).
        if b == 0 and c == 0 and a:
            loose = (right - left) / abs(a)
        elif a == 0 and d == 0 and b:
            loose = (top - bottom) / abs(b)
        else:  # skewed or turned by an odd angle: the box's diagonal is as good as it gets
            loose = ((right - left) ** 2 + (top - bottom) ** 2) ** 0.5
        here = (obj, ox, oy)
        if here == last and chars:
            # A ligature glyph ("ff") that pdfium hands out as its letters, each with the glyph's
            # box: one character of two letters, as pdfminer gives it (dedupe dropped the second
            # "f": "efect"), as wide as the glyph.
            chars[-1]["text"] += text
            place(chars[-1], (a, b, c, d, ox, oy) if identity else _mult((a, b, c, d, ox, oy), ctm), loose, low, high)
            continue
        last = here
        per_point = advances.get(code)
        if per_point is None:
            value = ctypes.c_float()
            found = f["FPDFFont_GetGlyphWidth"](font, code, 1.0, ctypes.addressof(value))
            per_point = advances[code] = value.value if found else 0.0
        advance = per_point * em
        if not 0.3 * loose <= advance <= loose:
            advance = loose
        if upright:  # the box directly (nearly every character)
            chars.append({"text": text, "fontname": fontname, "x0": ox, "x1": ox + a * advance, "top": height - (oy + d * high),
                          "bottom": height - (oy + d * low), "size": d * (high - low), "upright": True})
        else:
            m = (a, b, c, d, ox, oy) if identity else _mult((a, b, c, d, ox, oy), ctm)
            chars.append(place({"text": text, "fontname": fontname}, m, advance, low, high))
    for char in chars:
        if "\ud800" <= char["text"] <= "\udfff":
            char["text"] = "\ufffd"  # half of a pair, alone
    return chars


def _clusters(values: list[float], tolerance: float) -> dict[float, int]:
    """pdfplumber's cluster_list: sorted distinct values, chained while each is within
    ``tolerance`` of the one before; value -> cluster number."""
    out: dict[float, int] = {}
    cluster, last = 0, None
    for value in sorted(set(values)):
        if last is not None and value > last + tolerance:
            cluster += 1
        out[value] = cluster
        last = value
    return out


def dedupe(chars: list[dict], tolerance: float = 1) -> list[dict]:
    """Characters less duplicates (same text, font and size, within ``tolerance`` in both
    directions), in their order: pdfplumber's dedupe_chars (tops chained into rows, x0s chained
    within a row, the first by (top, x0) of each cluster kept) without its quadratic final sort
    (list.index per character: a third of pdfplumber's time on these PDFs)."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(chars):
        groups.setdefault((c["upright"], c["text"], c["fontname"], c["size"]), []).append(i)
    kept: list[int] = []

    def in_row(row: list[int]) -> None:
        row.sort(key=lambda i: chars[i]["x0"])
        cluster = [row[0]]
        for i in row[1:]:
            if chars[i]["x0"] > chars[cluster[-1]]["x0"] + tolerance:
                kept.append(min(cluster, key=lambda j: (chars[j]["top"], chars[j]["x0"], j)))
                cluster = []
            cluster.append(i)
        kept.append(min(cluster, key=lambda j: (chars[j]["top"], chars[j]["x0"], j)))

    for members in groups.values():
        if len(members) == 1:
            kept.append(members[0])
            continue
        members.sort(key=lambda i: chars[i]["top"])
        row = [members[0]]
        for i in members[1:]:
            if chars[i]["top"] > chars[row[-1]]["top"] + tolerance:
                in_row(row)
                row = []
            row.append(i)
        in_row(row)
    return [chars[i] for i in sorted(kept)]


def extract_words(chars: list[dict], x_tolerance_ratio: float, y_tolerance: float = 3) -> list[dict]:
    """pdfplumber's extract_words(x_tolerance_ratio=..., y_tolerance=..., return_chars=True):
    runs of upright (or turned) characters clustered into lines by top (by x0 when turned),
    sorted along the line, cut at spaces, at a step back, at a gap over ``x_tolerance_ratio``
    times the size of the character before, and at a top more than ``y_tolerance`` away."""
    words = []
    for upright, run in groupby(chars, key=lambda c: c["upright"]):
        run_chars = list(run)
        line_key, across, along, end = ("top", "top", "x0", "x1") if upright else ("x0", "x0", "top", "bottom")
        # pdfplumber clusters turned text by x0 with its x_tolerance (3), whatever y_tolerance is.
        lines = _clusters([c[line_key] for c in run_chars], y_tolerance if upright else 3)
        ordered = sorted(run_chars, key=lambda c: lines[c[line_key]])
        for _, line in groupby(ordered, key=lambda c: lines[c[line_key]]):
            current: list[dict] = []
            for char in sorted(line, key=lambda c: (c[along], c["x0"] if upright else c["bottom"])):
                if char["text"].isspace():
                    if current:
                        words.append(_word(current, upright))
                    current = []
                    continue
                if current:
                    last = current[-1]
                    tolerance = (x_tolerance_ratio * last["size"], y_tolerance) if upright else (y_tolerance, x_tolerance_ratio * last["size"])
                    if char[along] < last[along] or char[along] > last[end] + tolerance[0] or abs(char[across] - last[across]) > tolerance[1]:
                        words.append(_word(current, upright))
                        current = []
                current.append(char)
            if current:
                words.append(_word(current, upright))
    return words


def _word(chars: list[dict], upright: bool) -> dict:
    return {"text": "".join(LIGATURES.get(c["text"], c["text"]) for c in chars), "x0": min(c["x0"] for c in chars),
            "x1": max(c["x1"] for c in chars), "top": min(c["top"] for c in chars), "bottom": max(c["bottom"] for c in chars),
            "upright": upright, "chars": chars}
