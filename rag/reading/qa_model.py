"""Loading an extractive-QA model (its own module: the span reader, its ONNX twin and training
all load models, and none of them imports another for it)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def load_qa_model(name: str | Path, **kwargs):
    """AutoModelForQuestionAnswering in fp32 (the shipped weights are fp16 on disk)."""
    import torch
    import transformers
    from transformers import AutoModelForQuestionAnswering

    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    options: dict[str, Any] = {key: torch.float32, **kwargs}
    return AutoModelForQuestionAnswering.from_pretrained(str(name), **options)
