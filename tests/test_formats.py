"""Issue 22, item 6: formats in one table.  rag.parsing.FORMATS is what the service reads; the
README's table and the upload button's file filter list exactly its extensions."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.errors import UnsupportedDocument
from rag.ingest import document_from_bytes
from rag.parsing import FORMATS, SUPPORTED_SUFFIXES, format_of

ROOT = Path(__file__).resolve().parent.parent


def _readme_table_suffixes() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Supported formats", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "no table rows under 'Supported formats'"
    return {suffix for row in rows for suffix in re.findall(r"`(\.[a-z0-9]+)`", row.split("|")[1])}


def test_the_readme_table_lists_exactly_the_registry():
    assert _readme_table_suffixes() == set(SUPPORTED_SUFFIXES)


def test_the_upload_button_accepts_exactly_the_registry():
    page = (ROOT / "rag" / "web" / "index.html").read_text(encoding="utf-8")
    accept = re.search(r'id="file-input"[^>]*accept="([^"]*)"', page)
    assert accept is not None and set(accept.group(1).split(",")) == set(SUPPORTED_SUFFIXES)


def test_every_suffix_has_one_format_and_text_formats_parse():
    suffixes = [s for fmt in FORMATS for s in fmt.suffixes]
    assert len(suffixes) == len(set(suffixes)) == len(SUPPORTED_SUFFIXES)
    assert all(s == s.lower() and s.startswith(".") for s in suffixes)
    for fmt in FORMATS:
        assert format_of("NAME" + fmt.suffixes[-1].upper()) is fmt
        if not fmt.binary:
            document = document_from_bytes("note" + fmt.suffixes[-1], b"The beacon is blue.")
            assert document.text == "The beacon is blue." and document.format == fmt.name
    with pytest.raises(UnsupportedDocument, match="unsupported file type '.exe'"):
        format_of("tool.exe")
