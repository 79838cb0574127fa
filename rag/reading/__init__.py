"""Stage 6: readers that quote answer spans from retrieved passages."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rag.reading.base import Reader
from rag.reading.heuristic import HeuristicReader

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Reader", "HeuristicReader", "load_reader"]


def load_reader(settings: Settings) -> Reader:
    """Cheap: the reader ``settings.reader`` names, with the settings' answer length, device,
    runtime, ONNX cache, threads and quantization; the model (if any) loads on ``warm_up()``.

    ``auto``: the shipped span reader when its weights are installed, else the heuristic reader;
    ``heuristic``; ``span`` (the shipped model); or any Hugging Face extractive-QA name or folder.
    """
    spec = settings.reader
    if spec == "heuristic":
        return HeuristicReader()
    if spec in ("auto", "span"):
        try:
            from rag.reading.span import default_reader_path
        except ImportError:  # transformers missing
            if spec == "span":
                raise
            return HeuristicReader()
        path = default_reader_path()
        if not (path / "config.json").is_file():
            if spec == "span":
                from rag.errors import ModelLoadError

                raise ModelLoadError(f"the shipped reader model is missing from {path}")
            log.warning("shipped reader model not found at %s; using the heuristic reader", path)
            return HeuristicReader()
        spec = str(path)
    from rag.reading.span import SpanReader

    return SpanReader(spec, max_answer_tokens=settings.max_answer_tokens, device=settings.device, runtime=settings.reader_runtime,
                      onnx_cache_dir=settings.onnx_cache_dir, onnx_threads=settings.onnx_threads, quantize=settings.reader_quantize)
