"""HTTP edge: FastAPI app, request/response models, and error-to-status mapping.

``create_app`` is looked up lazily, so importing a submodule (``rag.api.schemas``) does not
import the whole app and the package does not import its own modules in a cycle.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from rag.api.app import create_app

        return create_app
    raise AttributeError(f"module 'rag.api' has no attribute {name!r}")
