"""One settings object for the whole service (environment prefix ``RAG_``).

Flags of the CLI override environment variables, which override these defaults.  The fields
that decide what an index *is* (model, chunking) are saved in the index manifest, so an index is
never queried with a different encoder than the one that built it.

This is the one module that reads the environment: the CLI and the app factory build a
``Settings`` and pass it (or the values it holds) down; no module below them looks again.
"""
from __future__ import annotations

import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rag.host import usable_cores



class RetrievalMode(StrEnum):
    """How passages are found: the one definition of the modes (settings, API, chat, CLI, eval)."""

    BM25 = "bm25"
    DENSE = "dense"
    HYBRID = "hybrid"
VectorBackend = Literal["faiss", "milvus"]
FaissIndexKind = Literal["auto", "flat", "hnsw", "ivf", "ivfpq"]

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_onnx_cache_dir() -> Path:
    """$XDG_CACHE_HOME/rag-extractive-qa/onnx (default ~/.cache/...): where exported graphs are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-extractive-qa" / "onnx"


def user_runtime_dir() -> Path:
    """Per-user folder where `rag serve` registers itself for `rag ask` ($XDG_RUNTIME_DIR when
    set, else the temp dir)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"rag-extractive-qa-{os.getuid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    # --- locations -----------------------------------------------------------------------
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")

    # --- embedding -----------------------------------------------------------------------
    # A hub name, a local folder, or "hashing:<dim>" (the deterministic test encoder).
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # 64 keeps peak memory under 1 GB with 256-token inputs and is ~10% faster than 32 on 2 cores.
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    device: str = "cpu"
    # Where texts are encoded: "auto" = ONNX Runtime for a local model on CPU (~7 ms per
    # question instead of ~16 ms on PyTorch, passages 1.3x faster, same vectors:
    # rag/embedding_onnx.py), PyTorch otherwise; "torch" or "onnx" force one.
    # ONNX Runtime threads for the encoder and the reader: the cores this process may use.
    onnx_threads: int = Field(default_factory=usable_cores, ge=1)
    encoder_runtime: Literal["auto", "torch", "onnx"] = "auto"
    # The same for the span reader: ~2x faster on ONNX Runtime, logits within 1e-5
    # (rag/reading/span_onnx.py).
    reader_runtime: Literal["auto", "torch", "onnx"] = "auto"
    # int8 weights for the span reader's inner layers (an int8 ONNX graph; PyTorch dynamic int8
    # where ONNX cannot run): /v1/ask at 8 clients 15.0 -> 25.9 requests/s and server CPU 57 -> 44
    # ms per request on 2 cores at load average 8 (eval/bench/reader_int8.py); SQuAD v1.1 dev
    # (2,000 q) F1 as served 67.0 -> 66.2, SQuAD v2.0 52.5 -> 52.4, seed gold 77.9 -> 79.1
    # (eval/RESULTS.md, "int8 reader").  "none" keeps fp32.
    reader_quantize: Literal["none", "int8"] = "int8"
    # The exported ONNX graphs (default ~/.cache/rag-extractive-qa/onnx).
    onnx_cache_dir: Path = Field(default_factory=default_onnx_cache_dir)

    # --- chunking ------------------------------------------------------------------------
    # MiniLM truncates at 256 word pieces; paragraphs above this are split into sentence
    # windows.  Counting with the model's own tokenizer would tie chunking to the encoder, so we
    # bound words instead: 180 words is ~240 word pieces for English news prose (1.3 pieces/word).
    max_passage_words: int = Field(180, ge=16)
    # One sentence of overlap between windows keeps an answer that straddles a window boundary
    # together with its neighbour in at least one window.
    window_overlap_sentences: int = Field(1, ge=0, le=5)

    # --- retrieval -----------------------------------------------------------------------
    retrieval_mode: RetrievalMode = RetrievalMode.HYBRID
    top_k: int = Field(5, ge=1, le=100)
    # Each retriever contributes this many candidates to fusion.  50 gives fusion room to
    # promote a passage ranked low by one retriever and high by the other.
    candidate_depth: int = Field(50, ge=1, le=1000)
    # Fusion tuned on BEIR SciFact's *train* queries (rag eval --beir ... --split train --tune;
    # 35 weight x rrf_k points, eval/RESULTS.md): dense weight 0.75 and rrf_k 5 gave nDCG@10
    # 0.725 there vs 0.717 for the textbook rrf_k 60 with equal weights.  On held-out sets:
    # SQuAD v1.1 open (1,000 questions, seed 0) recall@5 0.971 vs 0.951 and recall@1 0.799 vs
    # 0.777; SciFact test nDCG@10 0.716 vs 0.724 (the one set where the default did better).
    rrf_k: int = Field(5, ge=1)
    bm25_weight: float = Field(1.0, ge=0.0)
    dense_weight: float = Field(0.75, ge=0.0)

    # Merge vector segments and drop deleted rows in a background thread after writes
    # (rag/store/compaction.py); off, only `rag index` compacts.
    background_compaction: bool = True

    # --- vector store (see rag/store/faiss_store.py and docs/deploy.md) ---------------------
    # "faiss": the index folder (SQLite texts and BM25, FAISS vector segments; the default);
    # "milvus": the whole index in Milvus at ``milvus_uri``, no index folder (docs/deploy.md).
    vector_backend: VectorBackend = "faiss"
    # "auto" picks by corpus size: exact search below faiss_ivf_min_passages, IVF with 8-bit
    # scalar quantization below faiss_ivfpq_min_passages, IVF-PQ with exact re-ranking beyond
    # (measured in rag/store/faiss_store.py and eval/BENCHMARKS.md).  "flat", "hnsw", "ivf" or
    # "ivfpq" force one kind.
    faiss_index: FaissIndexKind = "auto"
    faiss_ivf_min_passages: int = Field(50_000, ge=1)
    faiss_ivfpq_min_passages: int = Field(5_000_000, ge=1)
    # Query-time knobs (recorded in the manifest; these override them when set).
    faiss_hnsw_ef_search: int | None = Field(None, ge=1, le=4096)
    faiss_ivf_nprobe: int | None = Field(None, ge=1, le=65536)
    # A file path runs Milvus Lite embedded (e.g. index/milvus.db); http://host:19530 reaches a
    # Milvus server or cluster.  Empty: <index_dir>/milvus.db.
    milvus_uri: str = ""
    milvus_token: SecretStr = SecretStr("")
    # The alias of the index's collections ("<alias>_<id>" and "<alias>_<id>_records"); a full
    # rebuild fills new ones and moves the alias in one call (rag/store/milvus_store.py).
    milvus_collection: str = "rag_passages"
    # AUTOINDEX lets Milvus choose (HNSW on a cluster; Milvus Lite supports FLAT, IVF_FLAT, AUTOINDEX).
    milvus_index_type: str = "AUTOINDEX"

    # --- reading -------------------------------------------------------------------------
    # "auto": the shipped span reader when its weights are installed, else the heuristic one.
    # "heuristic", "span", or any Hugging Face extractive-QA model name or folder.
    reader: str = "auto"
    # Passages the reader reads per question; reading is ~90% of an answer's time.  5 since
    # issue 19 (eval/reader/read_depth.py, second reader weights, int8, 3 -> 5): answerable F1
    # on eval/realdocs 51.0 -> 53.2, seed gold F1 81.5 -> 83.8, SQuAD v1.1 open (1,000
    # questions, seed 0) 66.4 -> 67.2, no more unanswerable questions answered (5 of 14, 2 of
    # 16).  Most of the gain is an answer that more passages state winning by their combined
    # score (rag/reading/answers.py), not evidence at rank 4-5 (6 of 114 and 2 of 73 questions).
    # Cost, 2 busy cores: reading one question 1.7x (realdocs read p50 110 -> 185 ms, p95 239 ->
    # 350 ms), batched SQuAD open 1.6x (144 -> 227 s for the 1,000).  Earlier, first weights:
    # top 2 / 3 / 5 -> F1 60.3 / 62.3 / 62.8 at 15 / 9.5 / 5.0 questions per second.
    reader_top_k: int = Field(5, ge=1, le=50)
    max_answer_tokens: int = Field(30, ge=1, le=200)
    # None: the reader's own measured default threshold (see rag/reading/*.py).
    answer_threshold: float | None = Field(None, ge=0.0, le=1.0)

    # --- API -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # The service's public base URL (e.g. https://qa.example.org): chat answers link their
    # citations to <public_url>/documents/<id>?p=<n>#p<n>; empty = the service's own address
    # (the IP and port of the socket the request reached; never the Host header).
    public_url: str = ""
    max_question_chars: int = Field(1000, ge=1)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1)

    # --- security, limits, operations (docs/security.md) ----------------------------------
    # Comma-separated bearer tokens that may write (upload, delete, re-index) and read.  With
    # none set, writes are refused unless the service listens on loopback only (local use).
    api_keys: SecretStr = SecretStr("")
    # Comma-separated bearer tokens that may only read (ask, search, list and read documents).
    read_api_keys: SecretStr = SecretStr("")
    # Reads (questions, document list, /metrics) need a key too; needs api_keys or read_api_keys.
    require_auth_for_reads: bool = False
    # Whole request body (the upload limit applies per file inside it).
    max_body_bytes: int = Field(25 * 1024 * 1024, ge=1)
    max_documents_per_request: int = Field(20, ge=1)
    max_pdf_pages: int = Field(1000, ge=1)
    # Parsing one PDF stops (413, or the file skipped by `rag index`) past this many seconds: a
    # 63 KB PDF whose pages share one 20 MB compressed stream took 22.6 s for 100 pages, and
    # ~2 h at 1000.  Real manuals parse at ~0.1 s per page (eval/bench/ingest_shapes.py).
    max_parse_seconds: float = Field(120.0, gt=0)
    # Uploads and `rag index` parse each file in a worker process that the OS stops past
    # max_parse_seconds of CPU or this much memory (rag/parse_pool.py): a 2.7 KB PDF took
    # >= 139 CPU-s holding the GIL, a 578 KB .docx 2.98 GB (issue 20).
    parse_sandbox: bool = True
    max_parse_memory_mb: int = Field(1024, ge=64)
    # A "line" longer than this is not prose (minified or binary-like text): the file is skipped.
    max_line_chars: int = Field(1_000_000, ge=1000)
    # Per client address, in the `limits` notation ("300/minute", "10/second;1000/hour");
    # empty: no rate limit.  Applies to /v1/* only (not to health checks or /metrics).
    rate_limit: str = "300/minute"
    # Origins allowed to call the API from a browser ("*": any); empty: none.  The variable is
    # comma-separated (RAG_CORS_ORIGINS=https://a.example,https://b.example).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # One JSON line per request (with its request id) on stderr, logger "rag.access".  `rag
    # serve` decides by its stderr (a terminal: plain lines) when RAG_LOG_JSON is not set.
    log_json: bool = True
    # The key `rag ask` sends to a running `rag serve` (one of its RAG_API_KEYS or
    # RAG_READ_API_KEYS) when reads need one.
    api_key: SecretStr = SecretStr("")

    # --- hardening: cost limits, proxies, slow clients (docs/security.md) ------------------
    # Questions per /v1/ask:batch or /v1/search:batch request, and their characters together.
    # 64 questions take ~6.7 s of reading on 2 cores (9.5 questions/s, eval/RESULTS.md); 4 such
    # batches at once raised single-question latency from 136 to 628 ms (issue 11), so the
    # per-client work budget below is what bounds the total; these bound one request.
    max_batch_questions: int = Field(64, ge=1, le=64)
    max_batch_chars: int = Field(16_000, ge=1)
    # Chat history: messages per request and characters over all of them.  The follow-up
    # rewriter reads every user turn (linear time), so these bound one request's work: 256
    # messages / 200,000 characters is ~100 turns of our answers (~1,500 characters each) and
    # is rewritten in < 50 ms, against 9.5 s for the 520,001-message history of issue 11.
    max_chat_messages: int = Field(256, ge=2)
    max_chat_chars: int = Field(200_000, ge=1000)
    # Per-client work budget in the `limits` notation, charged per unit of work rather than
    # per request: a search query costs 1, a question 1 + the passages it reads (6 with
    # reader_top_k 5).  2400/minute = 400 questions a minute = 6.7 per second, about what 2
    # cores answer reading 5 passages (4.4-5.0/s batched), so one client cannot take more than
    # the machine.  Empty: off.
    work_budget: str = "2400/minute"
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the client;
    # from anyone else the header is ignored.  Empty: trust no one.  Comma-separated variable.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Slow clients: a request's headers must arrive within header_timeout_s of the connection
    # (or of the previous response), and its body may pause at most body_idle_timeout_s between
    # chunks and take body_total_timeout_s in all (25 MB at 83 KB/s), else 408 / closed.
    header_timeout_s: float = Field(10.0, gt=0)
    body_idle_timeout_s: float = Field(30.0, gt=0)
    body_total_timeout_s: float = Field(300.0, gt=0)
    # Open connections per client address (trusted proxies exempt) and in all (0: three quarters
    # of the open-file limit, which `rag serve` raises to its hard limit): 1,200 connections that
    # never sent their headers took every descriptor of a 1,024 limit (issue 20, rag/api/connections.py).
    max_connections_per_client: int = Field(64, ge=0)
    max_connections: int = Field(0, ge=0)

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for part in value:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"RAG_TRUSTED_PROXIES: {part!r} is not an address or network: {exc}") from exc
        return value

    @field_validator("rate_limit", "work_budget")
    @classmethod
    def _rate(cls, value: str, info) -> str:
        if value.strip():
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError as exc:
                raise ValueError(f"RAG_{info.field_name.upper()}={value!r} is not a rate like '300/minute': {exc}") from exc
        return value

    @model_validator(mode="after")
    def _reads_need_a_key(self) -> Settings:
        if self.require_auth_for_reads and not (self.api_keys.get_secret_value().strip() or self.read_api_keys.get_secret_value().strip()):
            raise ValueError("RAG_REQUIRE_AUTH_FOR_READS is on but no key is set: set RAG_API_KEYS or RAG_READ_API_KEYS")
        return self
