"""HTTP edge: FastAPI app, request/response models, and error-to-status mapping."""
from rag.api.app import create_app

__all__ = ["create_app"]
