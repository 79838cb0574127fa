"""HTML: main content only, as typed blocks with their spans in the source.

Page chrome goes first: script/style, nav/header/footer/aside, forms, hidden elements, ARIA
landmarks other than main, and elements whose class or id names navigation, sidebars, menus,
breadcrumbs, tables of contents or permalink anchors (Sphinx's "headerlink" pilcrows).  The
main element (``<main>``, ``role=main``, ``<article>``, Sphinx's ``div.body``) is then read;
if there is none, the body.  The title comes from og:title, <title>, then the first <h1>.
Superscripts stay readable (``2<sup>31</sup>`` -> ``2^31``).
"""
from __future__ import annotations

import re

from rag.errors import DocumentTooLarge, UnsupportedDocument
from rag.parsing.blocks import CAPTION, CODE, LIST_ITEM, PARAGRAPH, QUOTE, CanonicalBuilder, ParsedDocument, clean_inline, first_heading

# Bad-input guards (see docs/security.md): HTML nested deeper than this (counting elements
# left open, except those whose end tag HTML lets you omit) is an attack on the parser, and
# html.parser builds a Python object per element (~10 us each): this bounds one file to seconds.
MAX_HTML_DEPTH = 1000
MAX_HTML_ELEMENTS = 200_000
# Each element also costs ~0.5 us per enclosing element (parent walks): 990 nested <article>
# around 190,000 <b> stayed under both limits above and took > 51 CPU-s (issue 20); 990 x 5,000
# took 2.8 s.  The sum of the elements' depths is bounded: 5,000,000 is 50,000 elements 100 deep
# (~2.5 s); real pages are ~10-30 deep.
MAX_HTML_NESTING_WORK = 5_000_000
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr", "keygen", "basefont", "frame", "isindex"}
_OPTIONAL_END = {"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup", "colgroup", "caption", "rb", "rt", "rp", "rtc", "html", "head", "body"}
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
_RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "plaintext"}

_NOISE_TAGS = ["script", "style", "noscript", "template", "nav", "aside", "form", "button", "select", "input", "svg", "iframe", "canvas", "dialog"]
_NOISE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar", "toolbar", "dialog"}
_NOISE_WORDS = {"headerlink", "skip", "skip-link", "skiplink", "sr-only", "visually-hidden", "screen-reader-text", "related", "relbar", "theme-popup",
                "pagination", "prev-next", "edit-this-page", "feedback", "social", "share", "cookie", "cookies", "banner", "searchbox", "search",
                "sphinxsidebar", "sidebar", "footer", "header", "topbar", "toolbar", "keyboard-help", "mobile-nav"}
_NOISE_PREFIXES = ("nav", "menu", "sidebar", "breadcrumb", "toc", "footer", "cookie", "theme-")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "table", "figure", "figcaption",
           "caption", "header", "footer", "address", "details", "summary", "hr", "body", "center", "fieldset", "legend", *_HEADINGS}
_CONTEXT_KIND = {"li": LIST_ITEM, "dd": LIST_ITEM, "dt": LIST_ITEM, "blockquote": QUOTE, "figcaption": CAPTION, "caption": CAPTION}


def parse_html(html: str, fmt: str = "html") -> ParsedDocument:
    soup = _soup(html)
    title = _title(soup)
    for tag in soup.find_all(["head", "title"]):
        tag.decompose()
    root = _main_content(soup)
    builder = CanonicalBuilder(fmt)
    _Walker(builder, _LineIndex(html)).walk(root)
    parsed = builder.build()
    parsed.title = clean_inline(title) or first_heading(parsed)
    return parsed


def emit_html(builder: CanonicalBuilder, html: str, source_start: int | None = None, source_end: int | None = None) -> None:
    """Blocks of an HTML fragment (raw HTML inside Markdown), all cited to the fragment's span."""
    soup = _soup(html)
    _Walker(builder, None, (source_start, source_end)).walk(soup)


def _soup(html: str):
    from bs4 import BeautifulSoup, Comment

    check_html_shape(html)
    soup = BeautifulSoup(html, "html.parser")
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(_NOISE_TAGS):
        tag.decompose()
    for tag in soup.find_all(_is_chrome):
        if not tag.decomposed:
            tag.decompose()
    return soup


def _is_chrome(tag) -> bool:
    attrs = tag.attrs or {}
    if "hidden" in attrs or attrs.get("aria-hidden") == "true" or "display:none" in str(attrs.get("style", "")).replace(" ", ""):
        return True
    if str(attrs.get("role", "")).lower() in _NOISE_ROLES:
        return True
    if tag.name in ("header", "footer") and tag.find_parent(["article", "main"]) is None:
        return True
    words = [w.lower() for w in (attrs.get("class") or [])] + str(attrs.get("id", "")).lower().split()
    return any(w in _NOISE_WORDS or w.startswith(_NOISE_PREFIXES) for w in words)


def _title(soup) -> str:
    meta = soup.find("meta", attrs={"property": "og:title"})
    if meta and meta.get("content", "").strip():
        return meta["content"]
    if soup.title and soup.title.get_text(strip=True):
        return soup.title.get_text(" ")
    return ""


def _main_content(soup):
    candidates = soup.find_all("main") + soup.find_all(attrs={"role": "main"}) + soup.find_all("article")
    candidates += soup.find_all("div", class_="body") + soup.find_all("div", id="content")
    if candidates:
        return max(candidates, key=lambda tag: len(tag.get_text()))
    return soup.body or soup


class _LineIndex:
    """(sourceline, sourcepos) -> offset in the source string."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        for i, char in enumerate(text):
            if char == "\n":
                self.starts.append(i + 1)

    def offset(self, tag) -> int | None:
        line, column = getattr(tag, "sourceline", None), getattr(tag, "sourcepos", None)
        if line is None or column is None or line - 1 >= len(self.starts):
            return None
        return self.starts[line - 1] + column

    def span(self, tag) -> dict:
        start = self.offset(tag)
        if start is None:
            return {}
        end = self._end(tag)
        return {"source_start": start, "source_end": max(start, end)}

    def _end(self, tag) -> int:
        """Offset after the element's end tag: the next element in source order starts after it."""
        from bs4 import Tag

        last = tag
        while isinstance(last, Tag) and last.contents:
            last = last.contents[-1]
        following = last.next_element
        while following is not None and (not isinstance(following, Tag) or getattr(following, "sourceline", None) is None):
            following = following.next_element
        end = self.offset(following) if following is not None else len(self.text)
        end = len(self.text) if end is None else end
        while end > 0 and self.text[end - 1].isspace():
            end -= 1
        return end


class _Walker:
    """Document-order walk emitting a block per run of inline text, iteratively (no recursion
    limit on deep but legal nesting)."""

    def __init__(self, builder: CanonicalBuilder, lines: _LineIndex | None, fixed_span: tuple | None = None):
        self.builder = builder
        self.lines = lines
        self.fixed = {"source_start": fixed_span[0], "source_end": fixed_span[1]} if fixed_span and fixed_span[0] is not None else {}
        self.buffer: list[str] = []
        self.buffer_owner = None

    def span(self, tag) -> dict:
        if self.lines is None or tag is None:
            return dict(self.fixed)
        return self.lines.span(tag)

    def flush(self, context: str) -> None:
        text = "".join(self.buffer)
        if clean_inline(text):
            self.builder.add(_CONTEXT_KIND.get(context, PARAGRAPH), text, **self.span(self.buffer_owner))
        self.buffer.clear()
        self.buffer_owner = None

    def walk(self, root) -> None:
        from bs4 import NavigableString, Tag

        stack = [(root, iter(root.contents), "")]
        while stack:
            element, children, context = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if isinstance(element, Tag) and element.name in _BLOCKS:
                    self.flush(context)
                continue
            if isinstance(child, NavigableString):
                if type(child) is NavigableString or type(child).__name__ == "CData":
                    if self.buffer_owner is None and str(child).strip():
                        self.buffer_owner = element
                    self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _BLOCKS or name in _HEADINGS:
                self.flush(context)
            if name in _HEADINGS:
                self.builder.heading(inline_text(child), _HEADINGS[name], **self.span(child))
            elif name == "pre":
                self.builder.add(CODE, child.get_text(), raw=True, **self.span(child))
            elif name == "table":
                self.builder.table(_rows(child), **self.span(child))
            elif name in ("sup", "sub", "br", "img"):
                self.buffer.append(_inline_special(child))
                if self.buffer_owner is None:
                    self.buffer_owner = element
            else:
                stack.append((child, iter(child.contents), name if name in _CONTEXT_KIND else context))
        self.flush("")  # text outside any block element ("plain words" as a whole document)


def _inline_special(tag) -> str:
    if tag.name == "br":
        return " "
    if tag.name == "img":
        return ""
    text = inline_text(tag)
    if tag.name == "sup":
        if tag.find("a") is not None or (tag.parent is not None and tag.parent.name == "a"):
            return ""  # a footnote reference marker
        before = tag.find_previous(string=True)
        # An exponent follows a digit or letter directly (2<sup>31</sup> -> 2^31); a
        # superscript after a space ("<sup>What I want</sup>") is only styling.
        return ("^" + text) if before is not None and str(before)[-1:].isalnum() else text
    return text


def inline_text(tag) -> str:
    from bs4 import NavigableString, Tag

    out: list[str] = []
    stack = [iter(tag.contents)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        if isinstance(child, NavigableString):
            out.append(str(child))
        elif isinstance(child, Tag):
            if child.name in ("sup", "sub", "br", "img"):
                out.append(_inline_special(child))
            else:
                out.append(" " if child.name in _BLOCKS else "")
                stack.append(iter(child.contents))
    return clean_inline("".join(out))


def _rows(table) -> list[list[str]]:
    rows = []
    for row in table.find_all("tr"):
        if row.find_parent("table") is not table:
            continue  # a nested table's row
        rows.append([inline_text(cell) for cell in row.find_all(["th", "td"], recursive=False)])
    return rows


def check_html_shape(html: str) -> None:
    """Refuse HTML too deep or too big for the parser, in one linear scan of its tags."""
    lowered = html.lower()
    depth = elements = nesting = 0
    position = 0
    while True:
        match = _TAG.search(html, position)
        if match is None:
            break
        position = match.end()
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            if name not in _VOID and name not in _OPTIONAL_END:
                depth = max(0, depth - 1)
            continue
        elements += 1
        if elements > MAX_HTML_ELEMENTS:
            raise UnsupportedDocument(f"HTML has more than {MAX_HTML_ELEMENTS} elements")
        nesting += depth
        if nesting > MAX_HTML_NESTING_WORK:
            raise DocumentTooLarge(f"HTML nests too many elements too deeply (more than {MAX_HTML_NESTING_WORK} element-levels; "
                                      f"{elements} elements so far, {depth} deep)")
        if name in _RAW_TEXT:  # their content is text, not tags
            end = lowered.find(f"</{name}", position)
            if end < 0:
                break
            position = end
            continue
        if not self_closing and name not in _VOID and name not in _OPTIONAL_END:
            depth += 1
            if depth > MAX_HTML_DEPTH:
                raise UnsupportedDocument(f"HTML is nested more than {MAX_HTML_DEPTH} levels deep")
