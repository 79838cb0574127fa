"""The API docs at /docs, served with no network: Swagger UI's files come from a Python package.

FastAPI's own /docs page loads Swagger UI from a CDN, so it is blank on a machine without
network access (and under a strict Content-Security-Policy).  Here the same page is built from
the ``swagger-ui-bundle`` package (Swagger UI 4.15: 1.2 MB of JavaScript and CSS),
following FastAPI's self-hosting recipe, with the start-up script as a file instead of inline so
the page works under a policy that allows only same-origin scripts.  ReDoc is not packaged for
Python, so /redoc is removed rather than left blank.
"""
from __future__ import annotations

import html
import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

ASSETS_PREFIX = "/docs/assets"
# Served files: a fixed list, so no request path ever reaches the file system unchecked.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Both UIs set styles from their scripts and show data: images; ReDoc runs its search in a blob:
# worker.  Nothing is loaded from another origin (ReDoc's footer logo, always fetched from
# Redocly's CDN, is blocked by this policy and hides itself).
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Start-up script (Swagger UI's usual options; validatorUrl null: no call to an online validator).
INIT_JS = """"use strict";
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""


def assets_dir() -> Path:
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def _head(title: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="icon" type="image/png" href="{ASSETS_PREFIX}/favicon.png">'
    )


def swagger_page(title: str, openapi_url: str) -> str:
    return (
        _head(f"{title} - API docs") + f'<link rel="stylesheet" href="{ASSETS_PREFIX}/swagger-ui.css"></head>'
        f'<body data-openapi-url="{html.escape(openapi_url)}"><div id="swagger-ui"></div>'
        f'<script src="{ASSETS_PREFIX}/swagger-ui-bundle.js"></script>'
        f'<script src="{ASSETS_PREFIX}/init.js"></script></body></html>'
    )


def redoc_page(title: str, openapi_url: str) -> str:
    # No web fonts (FastAPI's page pulls Google Fonts): system fonts only.
    return (
        _head(f"{title} - API reference") + "</head>"
        f'<body style="margin:0"><redoc spec-url="{html.escape(openapi_url)}"></redoc>'
        f'<script src="{ASSETS_PREFIX}/redoc.standalone.js"></script></body></html>'
    )


def setup(app: FastAPI) -> None:
    """Replace FastAPI's CDN-based /docs and /redoc with self-hosted pages."""
    cdn_paths = {app.docs_url, app.redoc_url} - {None}
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path in cdn_paths)]
    folder = assets_dir()
    openapi_url = app.openapi_url or "/openapi.json"
    pages = {"/docs": swagger_page(app.title, openapi_url), "/redoc": redoc_page(app.title, openapi_url)}

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(pages["/docs"], headers=DOCS_HEADERS)

    @app.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(pages["/redoc"], headers=DOCS_HEADERS)

    @app.api_route(ASSETS_PREFIX + "/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def asset(name: str) -> Response:
        headers = {**DOCS_HEADERS, "Cache-Control": "public, max-age=86400"}
        if name == "init.js":
            return Response(INIT_JS, media_type="text/javascript; charset=utf-8", headers=headers)
        if name not in ASSETS:
            return Response("not found", status_code=404, media_type="text/plain", headers=DOCS_HEADERS)
        return FileResponse(folder / name, media_type=ASSETS[name], headers=headers)
