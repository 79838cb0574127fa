"""Layout of the web workspace in headless Chromium, at a desktop (1280 px) and a phone (390 px)
width: the document view is one readable column without sideways scrolling (a bare ``.document``
rule once laid it out as a row of narrow columns), the side panel has no sideways scroll and its
"New conversation" button is whole with three or more documents, and a source card's "[1]"
badge stays on one line (issue 21).

Playwright starts headless Chromium with ``--hide-scrollbars``, which hid the side panel's
overflow: the browser here keeps classic scrollbars, as a desktop browser has them.
"""
from __future__ import annotations

import httpx
import pytest

from support import CHROMIUM, browser_page, indexed_pipeline, needs_chromium, serve
from rag.api.app import create_app

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

WIDTHS = (1280, 390)
LOCAL = {"X-Requested-With": "pytest"}
LONG_TITLE = "Harbour notes and records of the lighthouse keepers of Port Ellery, Cape Wrath and the Outer Hebrides, 1850 to 1950"
HARBOUR = "The lighthouse keeper of Port Ellery was Miriam Casaubon, who lit the lamp every evening.\n"
# 450 paragraphs (each long enough not to be grouped with its neighbours): three pages of the
# document view at its default 200 paragraphs a page.
LEDGER = "\n\n".join(
    f"Entry {n} of the harbour ledger records that crate {n} held {n * 3} tins of pilchards, landed at the north quay "
    "on a grey morning, counted twice by the harbour master and his clerk, weighed on the old brass scales beside "
    "the customs shed, and sent inland by the evening train to the markets of the county town." for n in range(450))


@pytest.fixture(scope="module")
def scrollbar_browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"],
                                    ignore_default_args=["--hide-scrollbars"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """The default corpus plus a document with a long title and a long one: four documents."""
    pipeline = indexed_pipeline(tmp_path_factory.mktemp("layout"))
    with serve(create_app(pipeline.settings, pipeline, warm_up=False)) as base:
        for doc in ({"document_id": "harbour", "title": LONG_TITLE, "text": HARBOUR},
                    {"document_id": "ledger", "title": "Ledger", "text": LEDGER}):
            assert httpx.post(base + "/v1/documents", json=doc, headers=LOCAL, timeout=60).status_code == 201
        yield base


def _page(browser, width: int):
    phone = width < 600
    return browser_page(browser, viewport={"width": width, "height": 800 if not phone else 844}, is_mobile=phone, has_touch=phone)


def _no_sideways_scroll(page) -> None:
    scroll, client = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert scroll <= client, f"sideways scroll: {scroll} > {client}"


@pytest.mark.parametrize("width", WIDTHS)
def test_document_view_is_one_readable_column(scrollbar_browser, url, width):
    page, problems = _page(scrollbar_browser, width)
    for path in ("/documents/nato-indo-pacific-pivot",
                 "/documents/nato-indo-pacific-pivot?p=1&quote=0-40&answer=48-74#p1",
                 "/documents/ledger", "/documents/ledger?start=200", "/documents/ledger?p=430#p430"):
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        viewport = page.viewport_size["width"]
        main = page.evaluate("() => document.querySelector('main').getBoundingClientRect().width")
        items = page.evaluate("() => [...document.querySelectorAll('.paragraphs li')].map(li => li.getBoundingClientRect())"
                              ".map(r => [r.left, r.width])")
        assert main >= viewport / 2, (path, main)
        assert items and min(w for _, w in items) >= viewport / 2, (path, items[:3])
        assert len({round(left) for left, _ in items}) == 1, f"{path}: paragraphs side by side"
        _no_sideways_scroll(page)
    # the ledger's later pages are reached through the page links, which also fit
    page.goto(url + "/documents/ledger?start=200")
    assert page.locator("nav.doc-pages").first.inner_text().count("paragraphs 200–399 of 450") == 1
    assert page.locator("li#p430").count() == 0 and page.locator("li#p200").count() == 1
    assert problems == [], f"browser console errors: {problems}"


@pytest.mark.parametrize("width", WIDTHS)
def test_side_panel_fits_with_four_documents(scrollbar_browser, url, width):
    page, problems = _page(scrollbar_browser, width)
    page.goto(url + "/")
    page.wait_for_load_state("networkidle")
    if width < 600:  # the panel folds away behind the header's button on phones
        page.locator("#panel-toggle").click()
    page.locator("#doc-count", has_text="4 documents").wait_for()
    side = page.evaluate("""() => { const s = document.getElementById('side'), r = s.getBoundingClientRect();
        return {scroll: s.scrollWidth, client: s.clientWidth, left: r.left, right: r.left + s.clientLeft + s.clientWidth}; }""")
    assert side["scroll"] <= side["client"], f"side panel scrolls sideways: {side}"
    button = page.locator("#new-chat").bounding_box()
    assert side["left"] <= button["x"] and button["x"] + button["width"] <= side["right"], (button, side)
    for remove in page.locator(".documents .document button").all():
        box = remove.bounding_box()
        assert box["x"] + box["width"] <= side["right"], box
    _no_sideways_scroll(page)
    assert problems == [], f"browser console errors: {problems}"


@pytest.mark.parametrize("width", WIDTHS)
def test_citation_badge_stays_on_one_line(scrollbar_browser, url, width):
    page, problems = _page(scrollbar_browser, width)
    page.goto(url + "/")
    page.wait_for_load_state("networkidle")
    page.locator("#question").fill("Who was the lighthouse keeper of Port Ellery?")
    page.locator("#question").press("Enter")
    page.locator(".exchange article.assistant").wait_for()
    card = page.locator("details.citation", has_text="lighthouse keepers").first
    assert card.locator(".doc-title").inner_text() == LONG_TITLE
    # the badge's text boxes: one line means one distinct top
    tops = card.locator("summary .marker").evaluate(
        "(m) => { const r = document.createRange(); r.selectNodeContents(m); return [...r.getClientRects()].map(x => Math.round(x.top)); }")
    assert card.locator("summary .marker").inner_text() == "[1]" and len(set(tops)) == 1, tops
    _no_sideways_scroll(page)
    assert problems == [], f"browser console errors: {problems}"
