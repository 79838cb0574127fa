"""The web page never renders document or answer text as HTML (headless Chromium, Playwright).

A document whose text, section heading and title carry <script>, event-handler attributes and
harmless marker elements is uploaded; the test asks about it in the chat page, opens every
citation, follows the link to the document view, and checks in each page that no marker element
exists, no script ran (no flag set, no dialog), and the markup is shown as literal text.
The marker elements (<b class="xss-marker">) make the check independent of the page's
Content-Security-Policy: CSP would stop a script, but not an element inserted as HTML.
"""
from __future__ import annotations


import pytest

from support import ROOT, indexed_pipeline, needs_chromium, serve

WEB_PAGE = ROOT / "rag" / "web" / "index.html"

pytestmark = [
    pytest.mark.skipif(not WEB_PAGE.exists(), reason=f"no web page at {WEB_PAGE} yet (rag/web/index.html)"),
    needs_chromium,
]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from rag.api.app import create_app  # noqa: E402

DOC_ID = "hostile"
HEADING = "Zorblax <b class=xss-marker>facts</b><svg onload=__xss='svg'>"
TEXT = (
    f"{HEADING}\n"
    "The zorblax beacon is colour Ultramarine Blue, say Zorblax engineers"
    "<script>window.__xss='script'</script><b class=\"xss-marker\">bold</b>"
    "<img src=x onerror=\"window.__xss='img'\"><a href=\"javascript:window.__xss='link'\">click</a>.\n"
)
TITLE = "<img src=x onerror=\"window.__xss='title'\"><b class=\"xss-marker\">Title</b>"
QUESTION = "What colour is the zorblax beacon?"
INJECTED = ".xss-marker, main script, main img, main svg, main iframe, #log a[href^='javascript']"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    pipeline = indexed_pipeline(tmp_path_factory.mktemp("xss"), rate_limit="", log_json=False)
    with serve(create_app(pipeline.settings, pipeline, warm_up=False)) as url:
        import httpx

        r = httpx.post(f"{url}/v1/documents", json={"document_id": DOC_ID, "title": TITLE, "text": TEXT})
        assert r.status_code == 201, r.text
        yield url


def _assert_inert(page, dialogs: list[str]) -> None:
    assert page.evaluate("() => window.__xss === undefined"), f"a script ran: {page.evaluate('() => window.__xss')}"
    assert page.locator(INJECTED).count() == 0, page.locator(INJECTED).first.evaluate("e => e.outerHTML")
    assert dialogs == []


def test_document_and_answer_text_are_never_html(browser, base_url):
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(base_url + "/")
    page.wait_for_load_state("networkidle")
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    page.locator(".exchange article.assistant, .exchange article.error").first.wait_for()
    answer = page.locator(".exchange article.assistant").first
    assert "abstained" not in (answer.get_attribute("class") or ""), answer.inner_text()
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.wait_for_timeout(200)
    _assert_inert(page, dialogs)
    shown = page.locator("#log").inner_text()
    # the markup is there, as text
    assert "<script>window.__xss='script'</script>" in shown
    assert '<b class="xss-marker">bold</b>' in shown
    assert "<img src=x onerror" in shown
    assert TITLE in shown or "xss-marker" in shown

    # the document view (the citation's link target) shows the same text inert
    page.goto(f"{base_url}/documents/{DOC_ID}")
    page.wait_for_load_state("networkidle")
    _assert_inert(page, dialogs)
    body = page.locator("body").inner_text()
    assert "<script>window.__xss='script'</script>" in body and TITLE in body
    assert "<b class=xss-marker>facts</b>" in body  # the section heading, as text

    # a reload restores the conversation from storage: still text
    page.goto(base_url + "/")
    page.wait_for_load_state("networkidle")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    _assert_inert(page, dialogs)
    assert "<script>window.__xss='script'</script>" in page.locator("#log").inner_text()


def test_api_answers_are_json_not_html(base_url):
    import httpx

    r = httpx.get(f"{base_url}/v1/documents/{DOC_ID}")
    assert r.headers["content-type"].startswith("application/json")
    # The canonical text (the heading line is a section title, the wrap is joined), served as JSON data.
    assert r.json()["text"] == TEXT.strip().replace("\n", "\n\n")
    page = httpx.get(f"{base_url}/documents/{DOC_ID}")
    assert "<script>window.__xss" not in page.text  # escaped on the server
    assert "&lt;script&gt;" in page.text
