"""Reading a document a page of paragraphs at a time, charged to the client's work budget.

``GET /v1/documents/{id}`` rendered four 20 MB documents whole: 21 CPU-s and a 145 MB response
built on the event loop, /healthz worst 10.2 s (issue 20, item 5; here one 20 MB document took
6.9 s and 6.8 CPU-s for 77 MB of JSON, /healthz worst 308 ms).  Now:

* a read returns paragraphs ``[start, start + limit)`` (``DEFAULT_PARAGRAPHS`` by default, at
  most ``MAX_PARAGRAPHS``), cut earlier when the page's text passes ``PAGE_CHARS``; the page's
  ``text`` is the document's text from ``text_start`` to ``text_end``, so consecutive pages tile
  the text exactly and a document of one page reads as before (``text`` whole);
* loading a document is ~0.1 s per MB of text (JSON row and paragraphs from SQLite): the last
  few loaded documents are kept per index version (``CACHE_CHARS`` of text in all), so paging
  through one loads it once, and at most ``LOADS_AT_ONCE`` loads run together (40 threads
  loading 20 MB each would be ~2.4 GB);
* the work budget is charged 1 unit per read before anything is done, then
  ``1 + characters / CHARS_PER_UNIT`` for a load that was not cached and the page's characters
  the same way (one unit of the default budget is ~0.05 CPU-s: 2400 units a minute on 2 cores);
* everything, JSON or HTML rendering included, runs in a worker thread (the routes are plain
  ``def`` and return rendered bytes).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request

from rag.api.budget import charge
from rag.pipeline import Pipeline
from rag.types import Document, Paragraph

DEFAULT_PARAGRAPHS = 200
MAX_PARAGRAPHS = 1000
# A page stops adding paragraphs past this many characters (it has at least one): its JSON is
# then ~3x this (text, paragraph texts, blocks), a few MB at most.
PAGE_CHARS = 1_000_000
# Loading 20 MB took ~2 s of CPU on the 2-core machine: 40 units of ~0.05 CPU-s, 1 per 500,000.
CHARS_PER_UNIT = 500_000
CACHE_CHARS = 40_000_000  # two 20 MB documents (~60 MB of objects each)
LOADS_AT_ONCE = 2


@dataclass(frozen=True)
class Loaded:
    document: Document
    info: dict
    paragraphs: list[Paragraph]


@dataclass(frozen=True)
class Page:
    loaded: Loaded
    start: int  # first paragraph index of the page
    end: int  # one past the last
    text_start: int
    text_end: int

    @property
    def paragraphs(self) -> list[Paragraph]:
        return self.loaded.paragraphs[self.start : self.end]

    @property
    def count(self) -> int:
        return len(self.loaded.paragraphs)

    @property
    def next_start(self) -> int | None:
        return self.end if self.end < self.count else None

    @property
    def text(self) -> str:
        return self.loaded.document.text[self.text_start : self.text_end]


class DocumentCache:
    """The last loaded documents, by (index version, id), bounded by their characters."""

    def __init__(self, max_chars: int = CACHE_CHARS, loads_at_once: int = LOADS_AT_ONCE):
        self.max_chars = max_chars
        self._entries: OrderedDict[tuple[int, str], Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loads = threading.BoundedSemaphore(loads_at_once)

    def _cached(self, key: tuple[int, str]) -> Loaded | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def _keep(self, key: tuple[int, str], loaded: Loaded) -> None:
        size = len(loaded.document.text)
        if size > self.max_chars:
            return
        with self._lock:
            self._entries[key] = loaded
            self._entries.move_to_end(key)
            while sum(len(e.document.text) for e in self._entries.values()) > self.max_chars:
                self._entries.popitem(last=False)

    def load(self, pipeline: Pipeline, document_id: str) -> tuple[Loaded, bool]:
        """The document's text, origin and paragraphs from one snapshot; True when it was cached."""
        key = (pipeline.version(), document_id)
        found = self._cached(key)
        if found is not None:
            return found, True
        with self._loads:
            found = self._cached(key)  # another thread may have loaded it meanwhile
            if found is not None:
                return found, True
            document, info, paragraphs = pipeline.document_detail(document_id)
            loaded = Loaded(document, info, paragraphs)
            if pipeline.version() == key[0]:  # not a newer version's document under an older key
                self._keep(key, loaded)
            return loaded, False


def cache(request: Request) -> DocumentCache:
    state = request.app.state
    if getattr(state, "document_cache", None) is None:
        state.document_cache = DocumentCache()
    return state.document_cache


def units(characters: int) -> int:
    return 1 + characters // CHARS_PER_UNIT


def read_page(request: Request, pipeline: Pipeline, document_id: str, start: int, limit: int) -> Page:
    """Charge, load (or reuse) and cut the page: call from a worker thread."""
    charge(request, 1)  # a spent budget refuses before any work
    loaded, cached = cache(request).load(pipeline, document_id)
    page = cut(loaded, start, limit)
    charge(request, units(page.text_end - page.text_start) + (0 if cached else units(len(loaded.document.text))))
    return page


def cut(loaded: Loaded, start: int, limit: int) -> Page:
    """Paragraphs [start, start + limit), fewer when their text passes PAGE_CHARS (at least one)."""
    paragraphs, text = loaded.paragraphs, loaded.document.text
    start = max(0, min(start, len(paragraphs)))
    end = start
    first = paragraphs[start].doc_start if start < len(paragraphs) and start > 0 else 0
    while end < len(paragraphs) and end - start < limit:
        if end > start and paragraphs[end].doc_end - first > PAGE_CHARS:
            break
        end += 1
    if not paragraphs:  # a document without paragraphs: its whole text (empty or whitespace)
        return Page(loaded, 0, 0, 0, len(text))
    if start >= len(paragraphs):  # past the end: an empty page at the end of the text
        return Page(loaded, start, start, len(text), len(text))
    text_end = paragraphs[end].doc_start if end < len(paragraphs) else len(text)
    return Page(loaded, start, end, first, text_end)


def blocks_of(page: Page) -> list:
    """The document's blocks that overlap the page's text (offsets stay the document's)."""
    document = page.loaded.document
    if page.text_start == 0 and page.text_end == len(document.text):  # the whole document: every block
        return list(document.blocks)
    return [b for b in document.blocks if b.start < page.text_end and b.end > page.text_start]
