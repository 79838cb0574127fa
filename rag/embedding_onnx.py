"""ONNX Runtime for the query side of a sentence-transformers encoder.

Why: one short question through PyTorch costs ~15-18 ms of MiniLM-L6 on 2 CPU cores (operator
dispatch dominates at ~20 tokens), the same graph on ONNX Runtime ~6.5-7.5 ms, with vectors
equal to PyTorch's (cosine > 0.9999; measured in eval/bench/NOTES.md).  That difference is most
of the 15 ms budget of ``/v1/search``.  int8 was measured too and lost 1.8 points of SQuAD open
recall@5, so only fp32 is used.

The graph is exported once per model (~8 s for MiniLM-L6) into the cache of rag/onnx_cache.py
and checked against PyTorch on probe sentences before it is trusted.  Only models made of a transformer,
mean pooling and (optionally) normalisation can be exported this way; anything else keeps
PyTorch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.errors import ModelLoadError
from rag.onnx_cache import INPUTS, export_module, load_checked

# The exported graph must reproduce PyTorch's vectors: the worst cosine over the probes.
MIN_AGREEMENT = 0.9999
PROBES = (
    "When did the Republic of Korea first attend a NATO summit?",
    "short",
    "A considerably longer sentence, with punctuation; numbers like 1,204 and 2024; and names such as Yoon Suk Yeol.",
)


def exportable(model) -> bool:
    """A SentenceTransformer of Transformer -> mean Pooling [-> Normalize] and nothing else."""
    names = [type(module).__name__ for module in model]
    if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
        return False
    config = model[1].get_config_dict()
    if "pooling_mode" in config:  # sentence-transformers >= 5: one mode name
        return config["pooling_mode"] in ("mean", "mean_tokens")
    modes = {k for k, v in config.items() if k.startswith("pooling_mode_") and v}
    return modes == {"pooling_mode_mean_tokens"}


def export(transformer_dir: Path, target: Path) -> None:
    """Transformer + mean pooling + L2 normalisation as one graph."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(transformer_dir))
    # Eager attention: tracing the SDPA path gave a graph whose outputs had cosine 0.96 to PyTorch's.
    model = AutoModel.from_pretrained(str(transformer_dir), attn_implementation="eager")

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    example = tokenizer(["a longer sentence with several more tokens in it", "short"], padding=True, return_tensors="pt")
    if "token_type_ids" not in example:
        example["token_type_ids"] = torch.zeros_like(example["input_ids"])
    export_module(Pooled(model), example, target, ["embedding"], {"embedding": {0: "batch"}})


class OnnxQueryEncoder:
    """Runs an exported encoder graph; ``encode`` takes a few texts, returns unit vectors."""

    def __init__(self, session, tokenizer, max_seq_length: int):
        self.session = session
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self._inputs = {i.name for i in session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        if "token_type_ids" not in enc:
            enc["token_type_ids"] = np.zeros_like(enc["input_ids"])
        feed = {name: enc[name].astype(np.int64) for name in INPUTS if name in self._inputs}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)

    @classmethod
    def for_model(cls, model, model_dir: Path, cache_dir: Path | None = None, threads: int = 2) -> OnnxQueryEncoder:
        """Export (or reuse) the graph of ``model`` (a loaded SentenceTransformer from ``model_dir``).

        Raises ModelLoadError when the model cannot be exported faithfully.
        """
        if not exportable(model):
            raise ModelLoadError(f"{model_dir}: only transformer + mean pooling models run on ONNX Runtime")
        transformer_dir = Path(model[0].auto_model.name_or_path)
        if not transformer_dir.is_dir():
            transformer_dir = model_dir
        reference = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

        def check(encoder: OnnxQueryEncoder) -> tuple[bool, str]:
            agreement = float(np.min(np.sum(encoder.encode(list(PROBES)) * reference, axis=1)))
            return agreement >= MIN_AGREEMENT, f"cosine to PyTorch {agreement:.6f}"

        return load_checked(model_dir, "encoder", lambda path: export(transformer_dir, path),
                            lambda session: cls(session, model.tokenizer, int(model.max_seq_length or 256)), check, cache_dir, threads)
