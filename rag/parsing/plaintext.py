"""Plain text: blank-line blocks with hard wraps joined, man/info layout, option lists.

Three layouts occur in real .txt files and are told apart per block:

* one paragraph per line (lines far longer than a terminal: the first default article);
* hard-wrapped prose (lines of at most ~80 characters), joined into one paragraph;
* manual pages rendered as text (``man -P cat``) and GNU info files: unindented headings over
  indented bodies, option terms (``-z, --gzip``) over deeper-indented descriptions, which stay
  together as one list item, and info node headers, which are dropped.

Every block keeps its span in the decoded file (``source_start``/``source_end``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag.parsing.blocks import CODE, LIST_ITEM, PARAGRAPH, CanonicalBuilder, ParsedDocument, clean_inline, first_heading

# A wrapped line is at most a terminal wide; the first default article's paragraph lines are
# 160-1,900 characters, man/info/FAQ lines 60-80.
WRAPPED_LINE_MAX = 100
HEADING_MAX_CHARS = 80
HEADING_MAX_WORDS = 12
_SENTENCE_END = ".!?:;,\"'”’)»|"
_UNDERLINE = re.compile(r"^\s*([=\-*~^#+])\1{2,}\s*$")
_OPTION = re.compile(r"^[‘`'\"]?[-+][-\w]")  # "-z, --gzip", info's "‘--help’"
_BULLET = re.compile(r"^(?:[*•·‣◦o-]|\d{1,3}[.)]|[a-zA-Z][.)])\s+")
_INFO_NODE = re.compile(r"^(?:File: \S+,\s+Node: |Tag Table:|End Tag Table)")
# "RSYNC(1)   User Commands   RSYNC(1)": a man page's running header and footer.
_MAN_RUNNING = re.compile(r"^\S.*\(\d[a-zA-Z]*\)$")
_INFO_MENU_ENTRY = re.compile(r"^\* [^:]{1,80}::")
_GAP = re.compile(r"\S {2,}\S")


@dataclass
class Line:
    start: int  # offset of the first non-blank character in the file's text
    end: int  # offset after the last non-blank character
    text: str  # stripped
    indent: int  # leading columns (tabs expanded)


def parse_text(text: str, fmt: str = "txt") -> ParsedDocument:
    builder = CanonicalBuilder(fmt)
    blocks = _raw_blocks(text)
    body_indent = _body_indent(blocks)
    man_title = ""
    option_context: int | None = None  # description indent of the last option term
    previous_kind, previous_text, previous_indent = "", "", 0
    pending_term: Line | None = None
    for number, lines in enumerate(blocks):
        following = blocks[number + 1][0].text if number + 1 < len(blocks) else None
        if lines[0].text == "* Menu:" or all(_INFO_MENU_ENTRY.match(line.text) for line in lines):
            continue  # an info menu: links to other nodes, not content
        if len(lines) == 1 and (lines[0].indent <= body_indent or not builder.blocks) and _looks_like_heading(lines[0].text, following):
            # A title line alone between blank lines, over a longer paragraph.
            line = lines[0]
            builder.heading(line.text, 1 if not builder.blocks else 2, source_start=line.start, source_end=line.end)
            continue
        if option_context is not None and lines[0].indent < option_context:
            builder.leave_context()
            option_context = None
        if max(len(line.text) for line in lines) > WRAPPED_LINE_MAX and len(lines) > 1 or _is_long_line_block(lines):
            # One paragraph per line, with short title-like lines as headings.
            for i, line in enumerate(lines):
                following = lines[i + 1].text if i + 1 < len(lines) else None
                if _looks_like_heading(line.text, following):
                    builder.heading(line.text, 2, source_start=line.start, source_end=line.end)
                else:
                    builder.add(PARAGRAPH, line.text, source_start=line.start, source_end=line.end)
            continue
        lines = _take_headings(builder, lines, body_indent)
        if not lines:
            continue
        if pending_term is not None:
            if lines[0].indent > pending_term.indent:
                lines = [pending_term, *lines]
            else:
                _emit_item(builder, [pending_term])
            pending_term = None
        if len(lines) == 1 and _OPTION.match(lines[0].text) and len(lines[0].text) < 60 and not _GAP.search(lines[0].text):
            pending_term = lines[0]  # an option term alone; its description may follow a blank line
            continue
        kind = _emit(builder, lines, previous_kind, previous_text, previous_indent)
        if kind == "option" and len(lines) > 1:
            builder.enter_context(lines[0].text, 3)
            option_context = lines[1].indent
        if not man_title and builder.heading_path[-1:] == ("NAME",) and builder.blocks[-1].kind != "heading":
            man_title = builder.last_text()  # "rsync - a fast, versatile, remote (and local) file-copying tool"
        previous_kind, previous_text, previous_indent = kind, lines[-1].text, lines[0].indent
    if pending_term is not None:
        _emit_item(builder, [pending_term])
    parsed = builder.build()
    parsed.title = man_title or first_heading(parsed) or _first_short_line(parsed)
    return parsed


def _raw_blocks(text: str) -> list[list[Line]]:
    """Runs of non-blank lines; info node headers, form feeds and man running headers act as
    blank lines."""
    blocks: list[list[Line]] = []
    current: list[Line] = []
    position = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip().strip("\x1f\x0c").strip()
        if not stripped or _INFO_NODE.match(stripped) or (_MAN_RUNNING.match(stripped) and _GAP.search(stripped)):
            if current:
                blocks.append(current)
                current = []
        else:
            lead = len(body) - len(body.lstrip())
            start = position + lead
            current.append(Line(start, start + len(body.strip()), body.strip(), len(body[:lead].expandtabs(8))))
        position += len(raw)
    if current:
        blocks.append(current)
    return blocks


def _body_indent(blocks: list[list[Line]]) -> int:
    """The indentation of the outermost prose (7 in man pages, whose option descriptions sit
    at 11-14; 0 in most text files, whose centred titles do not count)."""
    counts: dict[int, int] = {}
    for lines in blocks:
        for line in lines:
            if len(line.text) >= 40 and not _BULLET.match(line.text):
                counts[line.indent] = counts.get(line.indent, 0) + len(line.text)
    total = sum(counts.values())
    # The smallest indent holding 10% of the prose: a stray long line at column 0 is not the body.
    return next((indent for indent in sorted(counts) if counts[indent] >= 0.1 * total), 0)


def _is_long_line_block(lines: list[Line]) -> bool:
    return len(lines) == 1 and len(lines[0].text) > WRAPPED_LINE_MAX


def _looks_like_heading(line: str, following: str | None) -> bool:
    if len(line) > HEADING_MAX_CHARS or len(line.split()) > HEADING_MAX_WORDS:
        return False
    if line[-1] in _SENTENCE_END or line.lower().startswith("by ") or _BULLET.match(line) or _OPTION.match(line):
        return False
    return following is not None and (len(following) > len(line) or following.lower().startswith("by "))


def _take_headings(builder: CanonicalBuilder, lines: list[Line], body_indent: int) -> list[Line]:
    """Emit the headings at the top of a block (setext underlines, man section titles) and
    return the rest."""
    while lines:
        first = lines[0]
        if len(lines) > 1 and _UNDERLINE.match(lines[1].text) and len(lines[1].text) >= min(3, len(first.text)):
            level = 1 if lines[1].text.strip()[0] in "=*#" else 2
            builder.heading(first.text, level, source_start=first.start, source_end=lines[1].end)
            lines = lines[2:]
            continue
        short = len(first.text) <= 60 and len(first.text.split()) <= 8 and first.text[-1] not in _SENTENCE_END
        if short and first.indent < body_indent and (len(lines) == 1 or lines[1].indent > first.indent):
            level = 1 if first.indent == 0 else 2
            builder.heading(first.text, level, source_start=first.start, source_end=first.end)
            lines = lines[1:]
            continue
        if short and len(lines) > 1 and first.indent == lines[1].indent and not _BULLET.match(first.text) and not _OPTION.match(first.text) and len(first.text) < 0.6 * max(len(line.text) for line in lines[1:]):
            # "Title Line\nFirst paragraph ..." in prose: a wrapped line is never that short
            # unless it ends its paragraph, and a paragraph end has its full stop.
            builder.heading(first.text, 2, source_start=first.start, source_end=first.end)
            lines = lines[1:]
            continue
        return lines
    return lines


def _emit(builder: CanonicalBuilder, lines: list[Line], previous_kind: str, previous_text: str, previous_indent: int) -> str:
    first = lines[0]
    terms = 1
    while terms < len(lines) and lines[terms].indent == first.indent and _OPTION.match(lines[terms].text) and not _GAP.search(lines[terms].text):
        terms += 1  # info's "‘-e PATTERNS’" over "‘--regexp=PATTERNS’" over the description
    if 1 < terms < len(lines) and lines[terms].indent > first.indent and _OPTION.match(first.text):
        merged = Line(first.start, lines[terms - 1].end, " ".join(line.text for line in lines[:terms]), first.indent)
        lines = [merged, *lines[terms:]]
    if _OPTION.match(first.text) and (len(lines) == 1 or lines[1].indent > first.indent or _GAP.search(first.text)):
        items = _split_items(lines, lambda line: _OPTION.match(line.text) is not None and line.indent == first.indent)
        for item in items:
            _emit_item(builder, item)
        return "option" if len(items) == 1 else "list"
    if _BULLET.match(first.text):
        items = _split_items(lines, lambda line: _BULLET.match(line.text) is not None and line.indent <= first.indent)
        for item in items:
            builder.add(LIST_ITEM, _join(item), source_start=item[0].start, source_end=item[-1].end)
        return "list"
    if previous_text.endswith(":") and previous_kind == "paragraph" and first.indent >= previous_indent + 4:
        # An example under "... like this:" (command lines in manuals): keep its lines.
        raw = "\n".join(" " * (line.indent - first.indent) + line.text for line in lines)
        builder.add(CODE, raw, raw=True, source_start=first.start, source_end=lines[-1].end)
        return "code"
    builder.add(PARAGRAPH, _join(lines), source_start=first.start, source_end=lines[-1].end)
    return "paragraph"


def _split_items(lines: list[Line], starts_item) -> list[list[Line]]:
    items: list[list[Line]] = []
    for line in lines:
        if not items or starts_item(line):
            items.append([line])
        else:
            items[-1].append(line)
    return items


def _emit_item(builder: CanonicalBuilder, item: list[Line]) -> None:
    """An option term and its description: "term\\ndescription" (one list item)."""
    term, rest = item[0].text, item[1:]
    text = f"{clean_inline(term)}\n{_join(rest)}" if rest else term
    builder.add(LIST_ITEM, text, raw=True, source_start=item[0].start, source_end=item[-1].end)


def _join(lines: list[Line]) -> str:
    """Hard-wrapped lines as one paragraph: a soft or typographic hyphen at a line end is a
    hyphenation point (removed); an ASCII hyphen after a letter joins without a space
    ("command-\\nline" -> "command-line"); any other line break is a space."""
    out: list[str] = []
    for i, line in enumerate(lines):
        text = line.text
        if i + 1 < len(lines):
            if text.endswith(("\u00ad", "\u2010")) and len(text) > 1 and text[-2].isalpha():
                out.append(text[:-1])
                continue
            if text.endswith("-") and len(text) > 1 and text[-2].isalpha() and lines[i + 1].text[:1].islower():
                out.append(text)
                continue
        out.append(text + " ")
    return clean_inline("".join(out))


def _first_short_line(parsed: ParsedDocument) -> str:
    """A short opening line that reads as words (never a line of code or a rule of dashes)."""
    for block in parsed.blocks[:3]:
        text = parsed.text[block.start : block.end]
        letters = sum(ch.isalpha() or ch == " " for ch in text)
        if block.kind != CODE and len(text) <= HEADING_MAX_CHARS and letters >= 0.8 * len(text) and text[-1] not in ".:;!?,":
            return text
    return ""
