"""Markdown (CommonMark + GFM tables) through markdown-it-py's token stream.

Headings open sections; paragraphs, list items, tables, code fences and block quotes become
blocks.  Inline markup leaves the canonical text: emphasis and code markers, link syntax (the
link text stays), images and badges, HTML comments and tags.  Raw HTML blocks are parsed as
HTML.  Each block's source span comes from the token's line map.
"""
from __future__ import annotations

import re

from rag.errors import UnsupportedDocument
from rag.parsing.blocks import CODE, LIST_ITEM, PARAGRAPH, QUOTE, CanonicalBuilder, ParsedDocument, first_heading

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*[\"']?(.+?)[\"']?\s*$", re.MULTILINE)
_SUP_OPEN = re.compile(r"^<sup\b", re.IGNORECASE)
_BR = re.compile(r"^<br\b", re.IGNORECASE)


# markdown-it stops parsing a container nested past ``maxNesting`` (commonmark preset: 20, a
# list level counting 2) and drops the rest of it: a list nested 12 levels kept 9 of its 12
# items and quotes nested 20 deep vanished, with 201 (issue 20).  100 levels parse with ~150
# Python frames to spare at 200 (measured under 150 frames of caller stack); deeper nesting is
# refused, as HTML nested past 1000 levels is, never dropped.
MAX_NESTING = 100


def _parser():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable(["table", "strikethrough"])
    tokenize = md.block.tokenize

    def refusing_tokenize(state, start_line: int, end_line: int) -> None:
        # Where markdown-it would skip the rest of a too-deep container (parser_block.tokenize).
        if state.level >= MAX_NESTING and state.skipEmptyLines(start_line) < end_line:
            raise UnsupportedDocument(f"Markdown is nested more than {MAX_NESTING} levels deep")
        tokenize(state, start_line, end_line)

    md.block.tokenize = refusing_tokenize  # type: ignore[method-assign]
    return md


def parse_markdown(text: str, fmt: str = "md") -> ParsedDocument:
    title = ""
    match = _FRONT_MATTER.match(text) if text.startswith("---") else None
    source = text
    if match:
        found = _FRONT_MATTER_TITLE.search(match.group(1))
        title = found.group(1) if found else ""
        # Blank the front matter but keep every offset and line number in place.
        source = re.sub(r"[^\n]", " ", match.group(0)) + text[match.end() :]
    line_starts = [0]
    for i, char in enumerate(source):
        if char == "\n":
            line_starts.append(i + 1)
    line_starts.append(len(source) + 1)

    def span(token) -> dict:
        if not token.map:
            return {}
        first, last = token.map
        start = line_starts[min(first, len(line_starts) - 1)]
        end = max(start, line_starts[min(last, len(line_starts) - 1)] - 1)
        while end > start and source[end - 1] in " \t\r\n":
            end -= 1
        while start < end and source[start] in " \t":
            start += 1
        return {"source_start": start, "source_end": end}

    builder = CanonicalBuilder(fmt)
    tokens = _parser().parse(source)
    quote_depth = 0
    list_depth = 0
    item_parts: list[list[str]] = []  # text gathered for each open list item
    item_tokens: list = []
    table_rows: list[list[str]] | None = None
    table_token = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            builder.heading(render_inline(tokens[i + 1]), int(token.tag[1]), **span(token))
            i += 3
            continue
        if kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind in ("bullet_list_open", "ordered_list_open"):
            _flush_item(builder, item_parts, item_tokens, list_depth, span)
            list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif kind == "list_item_open":
            item_parts.append([])
            item_tokens.append(token)
        elif kind == "list_item_close":
            _flush_item(builder, item_parts, item_tokens, list_depth, span)
            item_parts.pop()
            item_tokens.pop()
        elif kind == "inline" and table_rows is not None:
            table_rows[-1].append(render_inline(token))
        elif kind == "paragraph_open":
            text = render_inline(tokens[i + 1])
            if item_parts:
                item_parts[-1].append(text)
            else:
                builder.add(QUOTE if quote_depth else PARAGRAPH, text, **span(token))
            i += 3
            continue
        elif kind == "table_open":
            table_rows, table_token = [], token
        elif kind == "tr_open" and table_rows is not None:
            table_rows.append([])
        elif kind == "table_close" and table_rows is not None:
            builder.table(table_rows, **span(table_token))
            table_rows = None
        elif kind in ("fence", "code_block"):
            _flush_item(builder, item_parts, item_tokens, list_depth, span)
            builder.add(CODE, token.content, raw=True, **span(token))
        elif kind == "html_block":
            _flush_item(builder, item_parts, item_tokens, list_depth, span)
            from rag.parsing.html import emit_html

            emit_html(builder, token.content, **span(token))
        i += 1
    parsed = builder.build()
    parsed.title = title or first_heading(parsed)
    return parsed


def _flush_item(builder: CanonicalBuilder, item_parts: list[list[str]], item_tokens: list, depth: int, span) -> None:
    """Emit the text gathered so far for the innermost open list item (before a nested list,
    a code block, or at its end)."""
    if item_parts and item_parts[-1]:
        builder.add(LIST_ITEM, " ".join(item_parts[-1]), level=depth, **span(item_tokens[-1]))
        item_parts[-1].clear()


def render_inline(token) -> str:
    """The visible text of an inline token: link text kept, images, markers and tags gone."""
    out: list[str] = []
    for child in token.children or ():
        kind = child.type
        if kind in ("text", "code_inline"):
            out.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append(" ")
        elif kind == "html_inline":
            if _SUP_OPEN.match(child.content) and out and out[-1][-1:].isalnum():
                out.append("^")  # an exponent: 2<sup>31</sup> -> 2^31
            elif _BR.match(child.content):
                out.append(" ")
    return "".join(out)
