"""Export a PyTorch model to ONNX once, cache it, and open ONNX Runtime sessions on it.

Used by the question encoder (rag/embedding_onnx.py) and the span reader (rag/reading/span.py).
On 2 CPU cores ONNX Runtime runs these MiniLM-L6 graphs ~2x faster than PyTorch with the same
outputs (question vectors: 6.5 vs 16 ms; reader, 5 windows of 141 tokens: 210 vs 400-520 ms on
a loaded machine; logits differ by < 1e-5).  Each caller checks agreement with PyTorch on probe
inputs before it trusts a graph, so a bad export falls back to PyTorch instead of answering
differently.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rag.errors import ModelLoadError

log = logging.getLogger(__name__)
T = TypeVar("T")

OPSET = 17
# BERT-style inputs, in the order the exported graphs take them.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cache_key(model_dir: Path, kind: str) -> str:
    """Changes when any model file, the wrapper kind or the exporter (torch version, opset) changes."""
    import torch

    digest = hashlib.sha256(f"{kind}|{torch.__version__}|opset{OPSET}|{model_dir.resolve()}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}|{stat.st_size}|{int(stat.st_mtime)}".encode())
    return f"{kind}-{digest.hexdigest()[:20]}"


def export_module(module, example: dict, target: Path, outputs: Sequence[str], output_axes: dict[str, dict[int, str]]) -> None:
    """Trace ``module(input_ids, attention_mask, token_type_ids)`` with dynamic batch and length."""
    import torch

    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    # The tracer warns about shape-dependent Python branches and the deprecated TorchScript
    # exporter; the agreement check of the caller is what decides whether the graph is used.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(example[n] for n in INPUTS), str(target), input_names=list(INPUTS),
                          output_names=list(outputs), dynamic_axes={**axes, **output_axes}, opset_version=OPSET, dynamo=False)


def cached_graph(model_dir: Path, kind: str, export: Callable[[Path], None], cache_dir: Path | None = None) -> tuple[Path, bool]:
    """(path of the graph, whether it was exported now); exports atomically on a cache miss."""
    if cache_dir is None:  # a model built outside the service (tests, eval scripts): Settings' default folder
        from rag.settings import default_onnx_cache_dir

        cache_dir = default_onnx_cache_dir()
    folder = cache_dir / cache_key(model_dir, kind)
    target = folder / "model.onnx"
    if target.exists():
        return target, False
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = Path(tmp) / "model.onnx"
        try:
            export(staged)
        except Exception as exc:  # noqa: BLE001 - exporter errors are many and model-specific
            raise ModelLoadError(f"cannot export {model_dir} to ONNX: {exc}") from exc
        os.replace(staged, target)
    return target, True


def open_session(path: Path, threads: int = 2):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelLoadError("onnxruntime is not installed") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # No busy-waiting between operators: on 2 shared cores spinning threads steal the CPU from
    # concurrent requests and from the other model.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_checked(model_dir: Path, kind: str, export: Callable[[Path], None], wrap: Callable[[Any], T],
                 check: Callable[[T], tuple[bool, str]], cache_dir: Path | None = None, threads: int = 2) -> T:
    """Export (or reuse) a graph, open it, wrap the session, and keep it only if ``check`` passes.

    ``check(runner)`` compares the runner with PyTorch on probe inputs: (agrees, what was measured).
    A graph that disagrees is deleted, so the next start does not reuse it.
    """
    target, fresh = cached_graph(model_dir, kind, export, cache_dir)
    runner = wrap(open_session(target, threads))
    agrees, measured = check(runner)
    if not agrees:
        target.unlink(missing_ok=True)
        raise ModelLoadError(f"ONNX export of {model_dir} disagrees with PyTorch ({measured})")
    if fresh:
        (target.parent / "export.json").write_text(json.dumps({"model": str(model_dir), "kind": kind, "check": measured}))
        log.info("exported %s %s to ONNX at %s (%s)", kind, model_dir, target, measured)
    return runner


def onnx_or(runtime: str, device: str, model_dir: Path, build: Callable[[], T], fallback: T, what: str) -> T:
    """``build()`` (an ONNX Runtime twin) when ``runtime`` allows it, else ``fallback`` (PyTorch).

    A twin needs the CPU and a model in a local folder (the export reads its files).
    runtime "torch": always the fallback; "onnx": the twin or ModelLoadError; "auto": the twin,
    or the fallback when it cannot be built faithfully (logged, not raised).
    """
    if runtime == "torch":
        return fallback
    try:
        if device != "cpu":
            raise ModelLoadError(f"ONNX Runtime is used on CPU only (device {device!r})")
        if not model_dir.is_dir():
            raise ModelLoadError(f"{model_dir} is not a local folder (ONNX export needs one)")
        return build()
    except ModelLoadError as exc:
        if runtime == "onnx":
            raise
        log.info("%s runs on PyTorch: %s", what, exc)
        return fallback
