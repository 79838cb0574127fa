"""The span reader's model on ONNX Runtime: same logits as PyTorch, about twice as fast on CPU.

Measured with the shipped reader, 5 passages of the default corpus (5 windows x 141 tokens) on 2
busy cores: PyTorch 400-520 ms, ONNX Runtime 210 ms per question, largest logit difference
5.7e-6.  ``OnnxQAModel`` is called like a transformers QA model (``model(**batch)`` with
``.start_logits`` / ``.end_logits``), so ``predict_pairs`` does not know which one it runs.
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from rag.onnx_cache import INPUTS, export_module, load_checked
from rag.reading.qa_model import load_qa_model

# Largest start/end logit difference to PyTorch on the probes that we accept (typical: 1e-5;
# logits are O(10), so 1e-3 cannot change which span wins except on exact ties).
MAX_LOGIT_DIFFERENCE = 1e-3
# int8 weights move logits by a few tenths (measured below); beyond this the graph is broken.
MAX_INT8_LOGIT_DIFFERENCE = 2.0
MAX_INT8_TIE = 0.5
PROBE_QUESTIONS = ("When did the alliance first meet?", "Who wrote it?")
PROBE_CONTEXTS = (
    "The alliance first met in Washington in 1949, forty years before the end of the Cold War.",
    "The article was written by a research fellow of the East-West Center in Honolulu.",
)


class OnnxQAModel:
    def __init__(self, session):
        self.session = session
        self._inputs = {i.name for i in session.get_inputs()}

    def __call__(self, **batch):
        import torch

        feed = {name: batch[name].cpu().numpy() for name in INPUTS if name in self._inputs and name in batch}
        if "token_type_ids" in self._inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = torch.zeros_like(batch["input_ids"]).numpy()
        start, end = self.session.run(None, feed)
        return SimpleNamespace(start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end))

    @classmethod
    def for_model(cls, model, tokenizer, model_dir: Path, cache_dir: Path | None = None, threads: int = 2,
                  quantize: bool = False) -> OnnxQAModel:
        """Export (or reuse) ``model`` (loaded from the local folder ``model_dir``); check it against PyTorch.

        ``quantize``: int8 weights (dynamic quantization of the exported graph's MatMuls, per
        channel), checked by agreement on the probes' best spans instead of on raw logits.
        """
        import torch

        class Logits(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.start_logits, out.end_logits

        example = tokenizer(list(PROBE_QUESTIONS), list(PROBE_CONTEXTS), padding=True, return_tensors="pt")
        if "token_type_ids" not in example:
            example["token_type_ids"] = torch.zeros_like(example["input_ids"])
        axes = {"start_logits": {0: "batch", 1: "tokens"}, "end_logits": {0: "batch", 1: "tokens"}}

        def export(target: Path) -> None:
            # A fresh copy with eager attention: traced SDPA attention does not match PyTorch.
            eager = load_qa_model(model_dir, attn_implementation="eager")
            if not quantize:
                export_module(Logits(eager), example, target, ["start_logits", "end_logits"], axes)
                return
            fp32 = target.with_name("fp32.onnx")
            export_module(Logits(eager), example, fp32, ["start_logits", "end_logits"], axes)
            quantize_graph(fp32, target)
            fp32.unlink()

        with torch.inference_mode():
            reference = model(**example)

        def check(onnx_model: OnnxQAModel) -> tuple[bool, str]:
            got = onnx_model(**example)
            difference = max(float((got.start_logits - reference.start_logits).abs().max()),
                             float((got.end_logits - reference.end_logits).abs().max()))
            if not quantize:
                return difference <= MAX_LOGIT_DIFFERENCE, f"max logit difference to PyTorch {difference:.2e}"
            near = all(near_best(g, r, example["attention_mask"]) for g, r in
                       ((got.start_logits, reference.start_logits), (got.end_logits, reference.end_logits)))
            return near and difference <= MAX_INT8_LOGIT_DIFFERENCE, (
                f"int8: best tokens near PyTorch's best {near}, max logit difference to PyTorch {difference:.2e}")

        return load_checked(model_dir, "qa-int8-edges" if quantize else "qa", export, cls, check, cache_dir, threads)


def near_best(got, reference, mask) -> bool:
    """Each row's best token under ``got`` scores within MAX_INT8_TIE of the best under ``reference``.

    Exact argmax agreement is too strict for int8: on the second probe PyTorch's two best end
    tokens differ by 0.04 and int8 swaps them.
    """
    import torch

    masked = torch.where(mask.bool(), reference, torch.tensor(float("-inf")))
    picked = masked.gather(-1, torch.where(mask.bool(), got, torch.tensor(float("-inf"))).argmax(-1, keepdim=True))
    return bool((masked.max(-1).values - picked.squeeze(-1) <= MAX_INT8_TIE).all())


def full_precision_nodes(graph) -> list[str]:
    """MatMuls kept in fp32: those of the first and last encoder layers and of the span head.

    SQuAD v1.1 dev, 1,000 questions (seed 0), reader mode, shipped reader; F1 as served / without
    the threshold, ms per 3 windows of 160 tokens on one core of a loaded machine:
    fp32 67.8 / 78.7, ~80-100 ms; every MatMul int8 66.9 / 78.0, ~40 ms; all but the span head
    66.9 / 78.0; also the FFN output projections kept 67.5 / 78.5, ~56 ms; first and last layers
    and the head kept (this) 67.6 / 78.6, ~56 ms.
    """
    matmuls = [node.name for node in graph.node if node.op_type == "MatMul"]
    layers = {name: int(found.group(1)) for name in matmuls if (found := re.search(r"layer\.(\d+)/", name))}
    if not layers:
        return [name for name in matmuls if "qa_outputs" in name]
    edge = {min(layers.values()), max(layers.values())}
    return [name for name in matmuls if layers.get(name, -1) in edge or name not in layers]


def quantize_graph(source: Path, target: Path) -> None:
    """int8 weights (per channel) for the inner layers' MatMuls; activations quantized per call."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = full_precision_nodes(onnx.load(str(source), load_external_data=False).graph)
    # The quantizer logs one INFO line per tensor on the root logger (~200 lines at start-up).
    logging.disable(logging.INFO)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep)
    finally:
        logging.disable(logging.NOTSET)
