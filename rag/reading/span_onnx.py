"""The span reader's model on ONNX Runtime: same logits as PyTorch, about twice as fast on CPU.

Measured with the shipped reader, 5 passages of the default corpus (5 windows x 141 tokens) on 2
busy cores: PyTorch 400-520 ms, ONNX Runtime 210 ms per question, largest logit difference
5.7e-6.  ``OnnxQAModel`` is called like a transformers QA model (``model(**batch)`` with
``.start_logits`` / ``.end_logits``), so ``predict_pairs`` does not know which one it runs.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from rag.onnx_cache import INPUTS, export_module, load_checked
from rag.reading.qa_model import load_qa_model

# Largest start/end logit difference to PyTorch on the probes that we accept (typical: 1e-5;
# logits are O(10), so 1e-3 cannot change which span wins except on exact ties).
MAX_LOGIT_DIFFERENCE = 1e-3
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
    def for_model(cls, model, tokenizer, model_dir: Path, cache_dir: Path | None = None, threads: int = 2) -> OnnxQAModel:
        """Export (or reuse) ``model`` (loaded from the local folder ``model_dir``); check it against PyTorch."""
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
            export_module(Logits(eager), example, target, ["start_logits", "end_logits"], axes)

        with torch.inference_mode():
            reference = model(**example)

        def check(onnx_model: OnnxQAModel) -> tuple[bool, str]:
            got = onnx_model(**example)
            difference = max(float((got.start_logits - reference.start_logits).abs().max()),
                             float((got.end_logits - reference.end_logits).abs().max()))
            return difference <= MAX_LOGIT_DIFFERENCE, f"max logit difference to PyTorch {difference:.2e}"

        return load_checked(model_dir, "qa", export, cls, check, cache_dir, threads)
