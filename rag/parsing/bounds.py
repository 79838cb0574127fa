"""Caps on document-level text that is copied into every block and passage.

A title and the heading path are repeated in each block's ``heading_path``, each paragraph's
and passage's ``section`` and each passage's ``title`` (stored rows, the lexical index and the
encoder's input).  Uncapped, a 536 KB Markdown file whose first heading had 500,000 characters
made a 994 MB index (issue 20); capped, each copy costs at most a few hundred characters, so a
document's stored size stays a small multiple of its text.
"""
from __future__ import annotations

# The seeds' headings are 24-72 characters and real manuals' option terms under 100: 200
# characters keep every real heading whole.
MAX_HEADING_CHARS = 200
# Markdown and HTML nest 6 heading levels; 500 characters keep 2-3 full entries and the
# innermost ones (the most specific) when a path is longer.
MAX_SECTION_CHARS = 500
# The JSON upload schema's limits (rag/api/schemas.py DocumentIn), applied on every path in.
MAX_TITLE_CHARS = 500
METADATA_MAX_CHARS = {"title": MAX_TITLE_CHARS, "author": 500, "publisher": 500, "source_url": 2000}
ELLIPSIS = "…"
_SEPARATOR = " > "  # blocks.HEADING_PATH_SEPARATOR (not imported: blocks imports this module)


def clip(text: str, max_chars: int) -> str:
    """``text`` whole when it fits, else its first ``max_chars - 1`` characters and "…"."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rstrip() + ELLIPSIS


def bounded_path(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry clipped to MAX_HEADING_CHARS; outermost entries dropped while the joined path
    is longer than MAX_SECTION_CHARS (the innermost entry always stays)."""
    path = [clip(entry, MAX_HEADING_CHARS) for entry in entries]
    while len(path) > 1 and sum(map(len, path)) + len(_SEPARATOR) * (len(path) - 1) > MAX_SECTION_CHARS:
        path.pop(0)
    return tuple(path)


def bounded_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Title, author, publisher and source URL clipped to the JSON upload's limits."""
    return {key: clip(value, METADATA_MAX_CHARS[key]) if key in METADATA_MAX_CHARS else value for key, value in metadata.items()}
