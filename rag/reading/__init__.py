"""Stage 6: readers that quote answer spans from retrieved passages."""
from __future__ import annotations

import logging

from rag.reading.base import Reader
from rag.reading.heuristic import HeuristicReader

log = logging.getLogger(__name__)

__all__ = ["Reader", "HeuristicReader", "load_reader"]


def load_reader(spec: str, max_answer_tokens: int = 30, device: str = "cpu", runtime: str = "torch",
                onnx_cache_dir=None, onnx_threads: int = 2, quantize: str = "none") -> Reader:
    """Cheap: the model (if any) loads on ``warm_up()``.

    ``auto``: the shipped span reader when its weights are installed, else the heuristic reader;
    ``heuristic``; ``span`` (the shipped model); or any Hugging Face extractive-QA name or folder.
    """
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

    return SpanReader(spec, max_answer_tokens=max_answer_tokens, device=device, runtime=runtime, onnx_cache_dir=onnx_cache_dir,
                      onnx_threads=onnx_threads, quantize=quantize)
