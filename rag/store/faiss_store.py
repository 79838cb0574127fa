"""FAISS backend: inner product over unit vectors (= cosine), index kind chosen by corpus size.

Measured with ``rag bench --section scale`` and the sweeps in eval/bench/NOTES.md: 384-dim
MiniLM-like vectors (synthetic, drawn around real SQuAD paragraph embeddings), real SQuAD
questions as queries, one query per call on one thread, on 2 shared CPU cores.  ``auto`` picks:

* N < 50,000: ``flat`` (IndexFlatIP), exact.  A query reads every vector: ~1 ms per 10^4
  passages (9 ms at 10^5), so an index that must be trained stops paying for itself below ~5*10^4.
* 50,000 <= N < 5,000,000: ``ivf`` (IVF with sqrt(N) lists rounded to a power of two, 8-bit
  scalar quantization, nprobe=128).  At 10^6 (``rag bench --section scale``): recall@10
  against exact 0.981, ~10 ms per query, 384 bytes per vector (375 MB), built in 10 s.  (An
  earlier sweep with 4x the training sample, eval/bench/NOTES.md, reached 0.993 at nprobe 32.)  Alternatives
  measured at the same sizes: HNSW (M=32, efConstruction=100, efSearch=256) reaches recall
  0.987 at 10^5 in 0.6 ms but builds 10-15x slower on 2 cores (75 s at 10^5) and keeps the
  float vectors plus a graph in RAM; IVF-PQ with 48 bytes per vector needs re-ranking of 32x
  the candidates to reach 0.974 at 10^6 and builds 4x slower (polysemous training switched off).
* N >= 5,000,000: ``ivfpq`` (IVF, PQ with 8 dimensions per byte, nprobe=128, re-ranked exactly
  by IndexRefineFlat over k*32 candidates): 48 bytes per vector resident, where 8-bit codes
  would need 2 GB per 5*10^6 vectors; the float vectors of the re-ranking stage are memory-mapped.

``hnsw`` stays available (``RAG_FAISS_INDEX=hnsw``) for machines with more cores.  Loading
memory-maps the float vectors that an index keeps (``faiss.IO_FLAG_MMAP_IFC``: the storage of
``flat`` and ``hnsw`` and the re-ranking stage of ``ivfpq``), so opening a large index is
instant and the vectors live in the page cache, shared between processes, not on the heap.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.store.base import VectorStore

INDEX_FILE = "faiss.index"
PARAMS_FILE = "faiss.json"
KINDS = ("flat", "hnsw", "ivf", "ivfpq")
# Batches of at least this many queries use every core (and BLAS for flat search).
SINGLE_THREAD_BELOW = 8


@dataclass(frozen=True)
class FaissConfig:
    kind: str = "auto"  # auto | flat | hnsw | ivf | ivfpq
    ivf_min_passages: int = 50_000
    ivfpq_min_passages: int = 5_000_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 100
    hnsw_ef_search: int = 256
    # Lists searched per query.  recall@10 against exact search, measured by rag bench's scale
    # data (1,000 real SQuAD questions): nprobe 32 / 64 / 128 -> 0.978 / 0.986 / 0.988 at 10^5
    # (256 lists) and 0.976 / 0.978 / 0.981 at 10^6 (1,024 lists; 1.7 / 4.0 / 10.5 ms on 2
    # loaded cores).  128 is the smallest value that reaches 0.98 at both sizes.
    ivf_nprobe: int = 128
    pq_dims_per_byte: int = 8
    refine_factor: int = 32
    # Training points per IVF list (faiss warns below 39) and k-means iterations: fewer than
    # faiss' defaults (256 and 25) keep training under a minute at 10^6 on 2 cores; the recall
    # figures above were measured with these values.
    train_per_list: int = 64
    kmeans_iterations: int = 10

    @classmethod
    def from_settings(cls, settings) -> FaissConfig:
        config = cls(
            kind=settings.faiss_index,
            ivf_min_passages=settings.faiss_ivf_min_passages,
            ivfpq_min_passages=settings.faiss_ivfpq_min_passages,
        )
        return config.with_overrides(settings.faiss_hnsw_ef_search, settings.faiss_ivf_nprobe)

    def with_overrides(self, ef_search: int | None = None, nprobe: int | None = None) -> FaissConfig:
        if ef_search:
            self = replace(self, hnsw_ef_search=ef_search)
        if nprobe:
            self = replace(self, ivf_nprobe=nprobe)
        return self

    def kind_for(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        if n < self.ivf_min_passages:
            return "flat"
        return "ivf" if n < self.ivfpq_min_passages else "ivfpq"


def ivf_lists(n: int) -> int:
    """sqrt(N) rounded to a power of two, and at least 39 training points per list."""
    target = math.sqrt(max(n, 1))
    nlist = 2 ** max(0, round(math.log2(target)))
    return max(1, min(nlist, n // 39 or 1))


def pq_subquantizers(dimension: int, dims_per_byte: int) -> int:
    """The largest m <= dimension / dims_per_byte that divides the dimension."""
    m = max(1, dimension // dims_per_byte)
    while dimension % m:
        m -= 1
    return m


class FaissStore(VectorStore):
    backend = "faiss"

    def __init__(self, config: FaissConfig | None = None, index: faiss.Index | None = None, kind: str = "flat", mmap: bool = False):
        self.config = config or FaissConfig()
        self._index = index
        self.kind = kind
        self.mmap = mmap

    # ------------------------------------------------------------------------- build
    def build(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        self.kind = self.config.kind_for(n)
        if self.kind == "flat" or n == 0:
            self.kind = "flat"
            index = faiss.IndexFlatIP(d)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.config.hnsw_ef_construction
        elif self.kind in ("ivf", "ivfpq"):
            index = self._train_ivf(vectors)
        else:
            raise ValueError(f"unknown FAISS index kind {self.kind!r}; use auto, {', '.join(KINDS)}")
        if n:
            index.add(vectors)
        self._index = index
        self._apply_search_params()

    def _train_ivf(self, vectors: np.ndarray) -> faiss.Index:
        n, d = vectors.shape
        nlist = ivf_lists(n)
        if self.kind == "ivf":
            codes = "SQ8"
        else:
            m = pq_subquantizers(d, self.config.pq_dims_per_byte)
            codes = f"PQ{m}x{8 if n >= 256 * 39 else max(1, min(8, int(math.log2(max(n // 39, 2)))))}"
        base = faiss.index_factory(d, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(base))
        ivf.cp.niter = self.config.kmeans_iterations
        # Polysemous training (on by default) re-orders PQ codes for Hamming filtering, which
        # we do not use; it costs minutes per build (240 s of a 241 s train at 2*10^4 vectors).
        if hasattr(ivf, "do_polysemous_training"):
            ivf.do_polysemous_training = False
        sample = min(n, max(nlist * self.config.train_per_list, 256 * 39))
        rng = np.random.default_rng(0)
        train = vectors if sample >= n else vectors[np.sort(rng.choice(n, sample, replace=False))]
        base.train(train)
        # 8-bit codes rank as well as floats here (re-ranking 4x or 32x the candidates exactly
        # gave the same recall at 10^6), so only PQ gets an exact re-ranking stage.
        return base if self.kind == "ivf" else faiss.IndexRefineFlat(base)

    def _apply_search_params(self) -> None:
        if self._index is None:
            return
        if self.kind == "hnsw":
            faiss.downcast_index(self._index).hnsw.efSearch = self.config.hnsw_ef_search
        elif self.kind == "ivf":
            faiss.extract_index_ivf(self._index).nprobe = self.config.ivf_nprobe
        elif self.kind == "ivfpq":
            refine = faiss.downcast_index(self._index)
            refine.k_factor = float(self.config.refine_factor)
            faiss.extract_index_ivf(refine.base_index).nprobe = self.config.ivf_nprobe

    # ------------------------------------------------------------------------- query
    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``exclude``: rows never returned (deleted passages awaiting compaction)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        live = 0 if self._index is None else self._index.ntotal - (0 if exclude is None else len(exclude))
        if self._index is None or live <= 0 or k <= 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        k = min(k, live)
        params = self._params(exclude) if exclude is not None and len(exclude) else None
        if len(queries) >= SINGLE_THREAD_BELOW:
            return self._index.search(queries, k, params=params)
        # One query is too little work to share: on 2 busy cores, waking a second OpenMP thread
        # costs more than the search (IndexFlatIP at 10^5: 9 ms on one thread, 56 ms on two).
        # The thread count is per calling thread in OpenMP, so we restore it for the encoder.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._index.search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)

    def _params(self, exclude: np.ndarray) -> faiss.SearchParameters:
        """FAISS' own filter (IDSelectorBatch, a hash set) skips excluded rows inside the scan,
        so a segment with many tombstones needs no over-fetching; the query-time knobs must be
        repeated here because explicit parameters replace the index's own."""
        lib: Any = faiss  # the SWIG stubs lack these parameter classes' keyword arguments and attributes
        batch = lib.IDSelectorBatch(np.ascontiguousarray(exclude, dtype=np.int64))
        selector = lib.IDSelectorNot(batch)
        selector.referenced = batch  # keep the wrapped selector alive as long as ours
        if self.kind == "ivf":
            params = lib.SearchParametersIVF(sel=selector, nprobe=self.config.ivf_nprobe)
        elif self.kind == "hnsw":
            params = lib.SearchParametersHNSW(sel=selector, efSearch=self.config.hnsw_ef_search)
        elif self.kind == "ivfpq":
            base = lib.SearchParametersIVF(sel=selector, nprobe=self.config.ivf_nprobe)
            params = lib.IndexRefineSearchParameters(k_factor=float(self.config.refine_factor), base_index_params=base)
            params.referenced = base
        else:
            params = lib.SearchParameters(sel=selector)
        params.referenced_selector = selector
        return params

    # ------------------------------------------------------------------------- persistence
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(folder / INDEX_FILE))
        (folder / PARAMS_FILE).write_text(json.dumps(self.describe(), indent=2))

    @classmethod
    def load(cls, folder: Path, ef_search: int | None = None, nprobe: int | None = None, mmap: bool = True) -> FaissStore:
        """Open a saved index; ``ef_search`` / ``nprobe`` override the saved query-time knobs."""
        saved = {}
        if (folder / PARAMS_FILE).is_file():
            saved = json.loads((folder / PARAMS_FILE).read_text())
        fields = FaissConfig.__dataclass_fields__
        config = FaissConfig(**{k: v for k, v in saved.get("params", {}).items() if k in fields})
        config = config.with_overrides(ef_search, nprobe)
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        store = cls(config, faiss.read_index(str(folder / INDEX_FILE), flags), kind=saved.get("index", "flat"), mmap=mmap)
        store._apply_search_params()
        return store

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def memory_bytes(self) -> int:
        """Size of the serialised index: what it occupies in RAM when loaded without mmap."""
        return 0 if self._index is None else int(faiss.serialize_index(self._index).nbytes)

    def describe(self) -> dict:
        params = asdict(self.config)
        params.pop("kind")
        info = {"backend": self.backend, "index": self.kind, "metric": "inner_product", "params": params}
        if self._index is not None and self.kind == "ivf":
            info["nlist"] = int(faiss.extract_index_ivf(self._index).nlist)
        if self._index is not None and self.kind == "ivfpq":
            ivf = faiss.extract_index_ivf(faiss.downcast_index(self._index).base_index)
            info["nlist"] = int(ivf.nlist)
            info["pq_m"] = int(faiss.downcast_index(ivf).pq.M)
        return info
