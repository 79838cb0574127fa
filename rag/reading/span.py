"""Extractive span reader: a Hugging Face question-answering model over the retrieved passages.

All (question, passage) pairs of a batch of questions go through the model together, in
forward passes of windows of similar length (``length_batches``); a passage longer than
``max_seq_len`` is read in overlapping windows (``doc_stride`` tokens of overlap).  Every
window proposes its best spans (at most ``max_answer_tokens`` long); the tokenizer's offset
mapping turns token spans back into exact characters of the passage, and ``paragraph_start``
into characters of the paragraph, so ``paragraph.text[start:end]`` is always the answer.

Scores are calibrated (see ``Calibration``): a logistic model, fitted on held-out training data,
maps the span evidence (span logit minus the window's null logit, SQuAD 2.0 style; the gap to
the best span of the question) and the retrieval evidence (the passage's rank) to the
probability that the span is a correct answer (token F1 >= 0.5 against a gold answer).  The same
threshold therefore means the same thing for every question.  ``no_answer_score`` is one minus
the best span's probability.
"""
from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import ModelLoadError
from rag.reading.list_answers import asks_for_several, prefer_lists, widen_to_list
from rag.reading.answers import select_answers
from rag.reading.base import Reader
from rag.reading.qa_model import load_qa_model
from rag.reading.span_bounds import clean_candidates
from rag.reading.span_features import NAMES as FEATURE_NAMES
from rag.reading.span_features import candidate_features
from rag.types import AnswerSpan, ReaderOutput, RetrievedPassage

CALIBRATION_FILE = "reader_calibration.json"
MAX_QUESTION_TOKENS = 64

# Answer iff the best span's calibrated probability >= this.  Chosen on the held-out slice of
# the training data (1,033 held-out questions + one unanswerable each, 2,066 in all; reader mode),
# maximising SQuAD 2.0 F1 there: F1 74.0, HasAns F1 59.8, NoAns accuracy 88.2 at 0.397.  On
# SQuAD v2.0 dev this threshold gives F1 50.9 / NoAns accuracy 33.4: its unanswerables are harder
# than ours (details: rag/models/reader/README.md).  The shipped folder's reader_calibration.json
# carries the same value and wins when present.
DEFAULT_THRESHOLD = 0.397


def default_reader_path() -> Path:
    """The reader shipped inside the package (fine-tuned all-MiniLM-L6-v2, fp16 safetensors)."""
    return Path(__file__).resolve().parent.parent / "models" / "reader"


@dataclass
class Calibration:
    """p(correct) = sigmoid(bias + w_margin*margin + w_gap*gap + w_rank*log1p(rank) + sum w_f * f).

    ``f`` are the span's features beyond the model (``span_features.NAMES``: question words near
    the span, question words in the span, table / listing / code passage); a calibration fitted
    without them has their weights at 0 and scores exactly as before.

    The defaults are the shipped reader's fit (rag/models/reader/reader_calibration.json); a model
    folder with its own reader_calibration.json overrides them.  Hub checkpoints have none, so
    their scores use these weights as a rough guess: calibrate them before trusting a threshold.
    """

    w_margin: float = 0.1753
    w_gap: float = -0.0003
    w_rank: float = -0.7172
    bias: float = -1.2869
    threshold: float = DEFAULT_THRESHOLD
    w_near: float = 0.0
    w_copy: float = 0.0
    w_table: float = 0.0
    w_listing: float = 0.0
    w_code: float = 0.0

    @property
    def feature_weights(self) -> tuple[float, ...]:
        """Weights of ``span_features.NAMES``, in that order (field ``w_<name>``)."""
        return tuple(getattr(self, f"w_{name}") for name in FEATURE_NAMES)

    @property
    def uses_features(self) -> bool:
        return any(self.feature_weights)

    def prob(self, margin: float, gap: float, rank: int, features: Sequence[float] = ()) -> float:
        z = self.bias + self.w_margin * margin + self.w_gap * gap + self.w_rank * math.log1p(rank)
        z += sum(w * f for w, f in zip(self.feature_weights, features))
        z = max(-40.0, min(40.0, z))
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, folder: Path) -> Calibration | None:
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        fields = {k: float(data[k]) for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class SpanCandidate:
    pair: int  # index of the (question, context) pair
    start: int  # character offsets into that context
    end: int
    score: float  # start logit + end logit
    null: float  # the window's [CLS] start + end logit
    margin: float  # score - null


def truncate_question(tokenizer, question: str, max_tokens: int = MAX_QUESTION_TOKENS) -> str:
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return question
    return question[: offsets[max_tokens - 1][1]]


def encode_pairs(tokenizer, questions: Sequence[str], contexts: Sequence[str], max_seq_len: int, doc_stride: int):
    """Tokenise (question, context) pairs into windows; no padding (batches pad themselves)."""
    qs = [truncate_question(tokenizer, q) for q in questions]
    return tokenizer(
        qs,
        list(contexts),
        truncation="only_second",
        max_length=max_seq_len,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


def context_masks(enc) -> list[list[bool]]:
    """Per window, which tokens belong to the context (the second sequence)."""
    return [[sid == 1 for sid in enc.sequence_ids(w)] for w in range(len(enc["input_ids"]))]


def collate(enc, rows: Sequence[int], pad_id: int):
    """Right-padded tensors for the windows ``rows`` of ``enc``."""
    import torch

    length = max(len(enc["input_ids"][r]) for r in rows)
    batch = {}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key not in enc:
            continue
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([enc[key][r] + [fill] * (length - len(enc[key][r])) for r in rows], dtype=torch.long)
    return batch


def best_spans(start, end, ctx_mask, max_answer_tokens: int, k: int):
    """Top-``k`` (score, start token, end token) per window, and each window's null score."""
    import torch

    b, length = start.shape
    start = start.float()
    end = end.float()
    neg = -1e9
    s = start.masked_fill(~ctx_mask, neg)
    e = end.masked_fill(~ctx_mask, neg)
    idx = torch.arange(length, device=start.device)
    width = idx[None, :] - idx[:, None]
    band = (width >= 0) & (width < max_answer_tokens)
    scores = (s[:, :, None] + e[:, None, :]).masked_fill(~band, neg)
    top = scores.view(b, -1).topk(min(k, length * length), dim=1)
    return top.values, top.indices // length, top.indices % length, start[:, 0] + end[:, 0]


# A batch's windows are padded to its longest; a window shorter than this share of the longest
# starts a new batch.  Default corpus, 8 questions x 3 passages: windows of 18-218 tokens (median
# 108), so one batch of 24 padded everything to 218 and cost more CPU than reading one question
# at a time (eval/reader/microbatch.json).
MIN_FILL = 0.75


def length_batches(lengths: Sequence[int], batch_size: int, min_fill: float | None = None) -> list[list[int]]:
    """Window rows, longest first, in batches of at most ``batch_size`` that pad little."""
    min_fill = MIN_FILL if min_fill is None else min_fill
    batches: list[list[int]] = []
    for r in sorted(range(len(lengths)), key=lambda r: -lengths[r]):
        if batches and len(batches[-1]) < batch_size and lengths[r] >= min_fill * lengths[batches[-1][0]]:
            batches[-1].append(r)
        else:
            batches.append([r])
    return batches


def predict_pairs(
    model,
    tokenizer,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_seq_len: int = 384,
    doc_stride: int = 128,
    max_answer_tokens: int = 30,
    batch_size: int = 64,
    spans_per_window: int = 5,
    device: str = "cpu",
    autocast_dtype=None,
) -> list[list[SpanCandidate]]:
    """Candidate spans of every pair, best first (merged over the pair's windows)."""
    import torch

    enc = encode_pairs(tokenizer, questions, contexts, max_seq_len, doc_stride)
    sample_of = enc["overflow_to_sample_mapping"]
    masks = context_masks(enc)
    out: list[list[SpanCandidate]] = [[] for _ in questions]
    pad_id = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for rows in length_batches([len(ids) for ids in enc["input_ids"]], batch_size):
            batch = {k: v.to(device) for k, v in collate(enc, rows, pad_id).items()}
            length = batch["input_ids"].shape[1]
            mask = torch.tensor([m + [False] * (length - len(m)) for m in (masks[r] for r in rows)], device=device)
            if autocast_dtype is not None:
                with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype):
                    res = model(**batch)
            else:
                res = model(**batch)
            values, ti, tj, null = best_spans(res.start_logits, res.end_logits, mask, max_answer_tokens, spans_per_window)
            values, ti, tj, null = (x.cpu().tolist() for x in (values, ti, tj, null))
            for bi, r in enumerate(rows):
                offsets = enc["offset_mapping"][r]
                pair = sample_of[r]
                for score, i, j in zip(values[bi], ti[bi], tj[bi]):
                    if score < -1e8:
                        break
                    cs, ce = offsets[i][0], offsets[j][1]
                    if ce <= cs:
                        continue
                    out[pair].append(SpanCandidate(pair, cs, ce, score, null[bi], score - null[bi]))
    for pair, cands in enumerate(out):
        cands.sort(key=lambda c: -c.score)
        cands[:] = clean_candidates(contexts[pair], cands)  # clean spans (span_bounds.py), each once at its best score
    return out


def rank_candidates(candidates: Sequence[Sequence[SpanCandidate]], calibration: Calibration, question: str = "",
                    contexts: Sequence[str] = ()) -> list[tuple[float, SpanCandidate]]:
    """(calibrated probability, candidate) over all passages of one question, best first.

    ``candidates[i]`` are the spans of the question's i-th passage (rank i, best first), read in
    ``contexts[i]``; a calibration with feature weights needs ``question`` and ``contexts``.
    """
    flat = [c for cands in candidates for c in cands]
    if not flat:
        return []
    best = max(c.score for c in flat)
    feats = None
    if calibration.uses_features:
        if len(contexts) != len(candidates):
            raise ValueError("a calibration with span features needs the question and each passage's text")
        feats = candidate_features(question, contexts, [[(c.start, c.end) for c in cands] for cands in candidates])
    ranked = [(calibration.prob(c.margin, c.score - best, rank, feats[rank][i] if feats else ()), c)
              for rank, cands in enumerate(candidates) for i, c in enumerate(cands)]
    ranked.sort(key=lambda pc: (-pc[0], -pc[1].score))
    return ranked


class SpanReader(Reader):
    """Reads the top passages with an extractive-QA model; calibrated span scores.

    ``model``: a local folder or a Hugging Face hub name (e.g. ``deepset/roberta-base-squad2``,
    where a network exists); None = the shipped reader.  ``max_seq_len``/``doc_stride``: window
    length and overlap in word pieces.  ``batch_size``: windows per forward pass (5 passages fit
    in one).  ``num_threads``: torch CPU threads (None: torch's default).  ``quantize="int8"``:
    int8 weights on CPU: an int8 ONNX graph when ``runtime`` allows ONNX, else PyTorch's dynamic
    int8 Linear layers (~2x faster; quality in eval/RESULTS.md).
    ``list_answers``: a question asking for several things gets a whole coordinated list
    (rag/reading/list_answers.py).  ``threshold``: overrides the calibrated default threshold.  ``runtime``: "torch", "onnx"
    (fail if the model cannot run there) or "auto" (ONNX Runtime for a local fp32 model on CPU
    when its logits match PyTorch's, see span_onnx.py; else PyTorch).
    """

    name = "span"
    default_threshold = DEFAULT_THRESHOLD

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        max_answer_tokens: int = 30,
        max_seq_len: int = 384,
        doc_stride: int = 128,
        batch_size: int = 32,
        device: str = "cpu",
        num_threads: int | None = None,
        quantize: str = "none",
        threshold: float | None = None,
        runtime: str = "torch",
        onnx_cache_dir: Path | None = None,
        onnx_threads: int | None = None,
        list_answers: bool = True,
    ):
        if runtime not in ("torch", "onnx", "auto"):
            raise ValueError("runtime must be 'torch', 'onnx' or 'auto'")
        if quantize not in ("none", "int8"):
            raise ValueError("quantize must be 'none' or 'int8'")
        self.model_name = str(model) if model is not None else str(default_reader_path())
        self.max_answer_tokens = max_answer_tokens
        self.max_seq_len = max_seq_len
        self.doc_stride = min(doc_stride, max_seq_len // 2)
        self.batch_size = batch_size
        self.device = device
        self.num_threads = num_threads
        self.quantize = quantize
        self.runtime = runtime
        self.onnx_cache_dir = onnx_cache_dir
        self.onnx_threads = onnx_threads
        self._threshold_override = threshold
        self.list_answers = list_answers
        self.calibration = Calibration()
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()
        if threshold is not None:
            self.default_threshold = threshold

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            try:
                import torch
                from transformers import AutoTokenizer

                if self.num_threads:
                    torch.set_num_threads(self.num_threads)
                tokenizer = AutoTokenizer.from_pretrained(self.model_name)
                model = load_qa_model(self.model_name)
            except Exception as exc:  # noqa: BLE001 - network, missing folder, wrong architecture
                raise ModelLoadError(f"cannot load reader model {self.model_name!r}: {exc}") from exc
            model.eval()
            model.to(self.device)
            model = self._onnx_or(model, tokenizer)
            if self.quantize == "int8" and hasattr(model, "parameters"):
                # PyTorch's dynamic int8 (ONNX Runtime's int8 graph is used when it can run)
                from rag.reading.torch_int8 import dynamic_int8

                model = dynamic_int8(model)
            if Path(self.model_name).is_dir():
                calibration = Calibration.load(Path(self.model_name))
                if calibration is not None:
                    self.calibration = calibration
                    if self._threshold_override is None:
                        self.default_threshold = calibration.threshold
            self._tokenizer = tokenizer
            self._model = model

    def _onnx_or(self, model, tokenizer):
        """The ONNX Runtime twin of ``model`` when ``runtime`` allows and it matches, else ``model``."""
        from rag.onnx_cache import onnx_or

        def build():
            from rag.reading.span_onnx import OnnxQAModel

            return OnnxQAModel.for_model(model, tokenizer, Path(self.model_name), self.onnx_cache_dir, self.onnx_threads or self.num_threads or 2,
                                         quantize=self.quantize == "int8")

        return onnx_or(self.runtime, self.device, Path(self.model_name), build, model, "the reader")

    @property
    def model_runtime(self) -> str:
        """"onnx" or "torch" (after warm-up)."""
        self.warm_up()
        return "torch" if hasattr(self._model, "parameters") else "onnx"

    def read(self, question: str, passages: Sequence[RetrievedPassage], top_n: int = 3) -> ReaderOutput:
        return self.read_batch([question], [passages], top_n)[0]

    def read_batch(
        self, questions: Sequence[str], passages: Sequence[Sequence[RetrievedPassage]], top_n: int = 3
    ) -> list[ReaderOutput]:
        """All (question, passage) pairs of all questions in flattened forward passes.

        Like Haystack's ExtractiveReader: the pairs of every question are tokenised together, the
        windows are sorted by length and read ``batch_size`` at a time, and each question gets
        back exactly its own pairs' candidates, so its answers are those of ``read`` alone (up
        to float rounding from padding, < 1e-4 in score; tests/test_span_reader.py).
        """
        questions, passages = list(questions), [list(p) for p in passages]
        if len(questions) != len(passages):
            raise ValueError("one list of passages per question")
        owners = [(qi, rp) for qi, (q, ps) in enumerate(zip(questions, passages)) if q.strip() for rp in ps]
        candidates: list[list[SpanCandidate]] = []
        if owners:
            self.warm_up()
            candidates = predict_pairs(
                self._model,
                self._tokenizer,
                [questions[qi] for qi, _ in owners],
                [rp.passage.text for _, rp in owners],
                max_seq_len=self.max_seq_len,
                doc_stride=self.doc_stride,
                max_answer_tokens=self.max_answer_tokens,
                batch_size=self.batch_size,
                spans_per_window=max(3, top_n),
                device="cpu" if self.quantize == "int8" else self.device,
            )
        per_question: list[list[list[SpanCandidate]]] = [[] for _ in questions]
        for (qi, _), cands in zip(owners, candidates):
            per_question[qi].append(cands)
        return [self._answers(q, ps, cands, top_n) for q, ps, cands in zip(questions, passages, per_question)]

    def _answers(self, question: str, passages: Sequence[RetrievedPassage], candidates: list[list[SpanCandidate]], top_n: int) -> ReaderOutput:
        """One question's output; ``candidates[i]`` belong to ``passages[i]`` (rank = i)."""
        if not candidates:
            return ReaderOutput(spans=[], no_answer_score=1.0)
        rank_of = {id(c): rank for rank, cands in enumerate(candidates) for c in cands}
        ranked = []
        contexts = [rp.passage.text for rp in passages[: len(candidates)]]
        several = self.list_answers and asks_for_several(question)
        for p, c in rank_candidates(candidates, self.calibration, question, contexts):
            rp = passages[rank_of[id(c)]]
            offset = rp.passage.paragraph_start
            start, end = widen_to_list(question, rp.passage.text, c.start, c.end) if several else (c.start, c.end)
            ranked.append(AnswerSpan(rp, offset + start, offset + end, p))
        if several:
            ranked = prefer_lists(ranked)
        answers = select_answers(ranked, top_n)
        if not answers:
            return ReaderOutput(spans=[], no_answer_score=1.0)
        return ReaderOutput(spans=answers, no_answer_score=1.0 - answers[0].score)
