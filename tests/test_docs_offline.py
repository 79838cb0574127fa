"""/docs and /redoc work with no network: their files are served by the app (rag/api/docs_offline.py)."""
from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from support import needs_chromium, serve
from rag.api.app import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from support import indexed_pipeline

    pipeline = indexed_pipeline(tmp_path_factory.mktemp("docs"))
    return create_app(pipeline.settings, pipeline, warm_up=False)


def test_docs_page_names_only_local_files(app):
    client = TestClient(app)
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text and "<script>" not in page.text, path
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js", "redoc.standalone.js", "favicon.png"):
        asset = client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200 and len(asset.content) > 100, name
    assert client.get("/docs/assets/../../pyproject.toml").status_code == 404
    assert client.get("/docs/assets/core.py").status_code == 404
    assert client.get("/openapi.json").json()["paths"]["/v1/ask"]


def test_head_requests_on_pages(app):
    client = TestClient(app)
    for path in ("/", "/docs", "/redoc"):
        response = client.head(path)
        assert response.status_code == 200, path


@pytest.fixture(scope="module")
def base_url(app) -> Iterator[str]:
    with serve(app) as url:
        yield url


def _offline_page(browser):
    """A page whose requests to anything but 127.0.0.1 fail, with the list of those it tried."""
    context = browser.new_context()
    outside: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return context, page, outside, problems


@needs_chromium
def test_swagger_ui_renders_with_the_network_blocked(browser, base_url):
    context, page, outside, problems = _offline_page(browser)
    page.goto(base_url + "/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
    assert "rag: extractive question answering" in page.locator(".swagger-ui .info .title").inner_text()
    operations = page.locator(".opblock-summary-path")
    operations.first.wait_for()
    assert "/v1/ask" in operations.all_inner_texts()
    assert outside == [], f"the docs page tried to reach the network: {outside}"
    assert problems == [], f"browser console errors: {problems}"
    context.close()


@needs_chromium
def test_redoc_renders_with_the_network_blocked(browser, base_url):
    context, page, outside, problems = _offline_page(browser)
    page.goto(base_url + "/redoc")
    page.get_by_role("heading", name="rag: extractive question answering", exact=False).first.wait_for(timeout=15_000)
    page.get_by_text("/v1/ask").first.wait_for()
    assert outside == [], f"the ReDoc page tried to reach the network: {outside}"
    # ReDoc's footer always shows Redocly's logo from their CDN; the page's policy blocks it.
    problems = [p for p in problems if not ("cdn.redoc.ly" in p and "Content Security Policy" in p)]
    assert problems == [], f"browser console errors: {problems}"
    context.close()
