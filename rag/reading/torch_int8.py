"""The span reader's int8 weights on PyTorch (runtime "torch", or where its ONNX graph cannot run).

PyTorch's dynamic quantization (fbgemm): int8 weights per output channel, activations quantized
per call.  ``torch.ao.quantization`` is deprecated in favour of torchao, which is not a
replacement here (issue 22, item 8; torchao 0.18, torch 2.13, 2 threads, the shipped reader):
its ``Int8DynamicActivationInt8WeightConfig`` without ``torch.compile`` reads 200 corpus passages
in 193 s against 11.7 s today and 18.7 s in fp32, and it quantizes activations per token, so the
best span differed on 75 of the 200 (scores by up to 0.028).  So this stays on
``torch.ao.quantization`` while torch ships it (its deprecation warnings silenced: nothing to do
about them here), and once it is gone the reader runs in fp32 (slower, not worse) and says so.
"""
from __future__ import annotations

import logging
import warnings

log = logging.getLogger(__name__)


def dynamic_int8(model):
    """``model`` (on CPU) with int8 Linear layers, or ``model`` unchanged when PyTorch no longer can."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.ao\.quantization")
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*quantize_per_(tensor|channel)")
        try:
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        except ImportError as exc:
            log.warning("PyTorch has no dynamic int8 quantization any more (%s): the reader runs in fp32 on PyTorch", exc)
            return model
        # per-channel weights lose less than per-tensor ones (SQuAD v1.1 dev sample: -1.9 vs -5.5
        # F1 on the first shipped weights)
        return quantize_dynamic(model.cpu(), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
