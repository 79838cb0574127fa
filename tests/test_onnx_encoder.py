"""Questions on ONNX Runtime: same vectors as PyTorch, cached export, honest fallback."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.embedding import SentenceTransformerEncoder, load_encoder
from rag.errors import ModelLoadError
from rag.settings import Settings

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

WORDS = "the a of to in and nato korea summit alliance who when what is was first pacific indo joined 2024 washington".split()
QUESTIONS = ["when did korea join the nato summit", "what is the indo pacific", "who joined in 2024", "nato"]


def _tiny_sentence_model(folder: Path, pooling: str) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    transformer_dir = folder / f"bert-{pooling}"
    transformer_dir.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (transformer_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(transformer_dir / "vocab.txt")).save_pretrained(str(transformer_dir))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(transformer_dir))
    word = Transformer(str(transformer_dir), max_seq_length=32)
    pool = Pooling(32, pooling_mode=pooling)
    out = folder / f"st-{pooling}"
    SentenceTransformer(modules=[word, pool, Normalize()]).save(str(out))
    return out


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_st")
    _tiny_sentence_model(folder, "mean")
    _tiny_sentence_model(folder, "cls")
    return folder


def _encoder(model: str, runtime: str, onnx_cache_dir: Path | None = None):
    extra = {"onnx_cache_dir": onnx_cache_dir} if onnx_cache_dir else {}
    return load_encoder(Settings(embedding_model=model, encoder_runtime=runtime, **extra))


def test_onnx_questions_match_pytorch_and_the_export_is_cached(models_dir: Path, tmp_path: Path):
    model = str(models_dir / "st-mean")
    onnx = _encoder(model, "onnx", tmp_path)
    torch_only = _encoder(model, "torch")
    assert onnx.query_runtime == "onnx" and torch_only.query_runtime == "torch"
    a, b = onnx.encode(QUESTIONS), torch_only.encode(QUESTIONS)
    assert a.shape == b.shape == (len(QUESTIONS), 32)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.9999
    assert np.allclose(onnx.encode_query(QUESTIONS[0]), b[0], atol=1e-4)

    exported = list(tmp_path.rglob("model.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    again = _encoder(model, "auto", tmp_path)
    assert again.query_runtime == "onnx"
    assert exported[0].stat().st_mtime_ns == stamp, "a cached export must be reused, not redone"


def test_big_batches_keep_their_order(models_dir: Path, tmp_path: Path):
    model = str(models_dir / "st-mean")
    onnx = _encoder(model, "onnx", tmp_path)
    torch_only = _encoder(model, "torch")
    # Lengths vary, so length-sorted batches must be put back in input order.
    many = [" ".join(WORDS[: 1 + (i * 7) % len(WORDS)]) for i in range(150)]
    a, b = onnx.encode(many, show_progress=False), torch_only.encode(many, show_progress=False)
    assert a.shape == (150, 32)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.9999
    assert onnx.encode([]).shape == (0, 32)


def test_models_onnx_cannot_reproduce_fall_back_or_fail(models_dir: Path, tmp_path: Path):
    cls_model = str(models_dir / "st-cls")
    auto = _encoder(cls_model, "auto", tmp_path)
    assert auto.query_runtime == "torch"
    assert auto.encode(QUESTIONS).shape == (len(QUESTIONS), 32)
    with pytest.raises(ModelLoadError, match="mean pooling"):
        _encoder(cls_model, "onnx", tmp_path).warm_up()
    # Hub names have no local folder to export from: PyTorch, without touching the network.
    hub = SentenceTransformerEncoder("someone/some-model", runtime="auto")
    assert hub._load_onnx(Path("someone/some-model")) is None
