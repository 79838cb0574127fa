"""Stage 7: the question-answering pipeline that the API, CLI and evaluation all share.

Construction is cheap; ``warm_up()`` loads the encoder, the reader and the index once.  Index
updates build a new version on disk and then swap the in-memory snapshot, so a request in
flight keeps the snapshot it started with (never a half-updated index).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from pathlib import Path

from rag.abstention import Cause, answers, no_answer
from rag.sentences import sentence_around
from rag.embedding import Encoder, load_encoder
from rag.errors import DocumentNotFound, IndexNotFound, InvalidRequest, NotReady
from rag.ingest import IngestLimits, load_documents
from rag.microbatch import MicroBatcher
from rag.reading_views import read_with_views
from rag.reading import Reader, load_reader
from rag.retrieval import RetrievalParams, Retriever
from rag.settings import Settings
from rag.store.protocol import Index, IndexReport
from rag.store.factory import compact as compact_index, compaction_due, latest_version, load_index, make_writer
from rag.types import (Answer, AnswerSpan, Citation, Document, IndexStatus, NoAnswer, Paragraph, QAResult, ReaderOutput, RetrievedPassage,
                       SearchResult)

log = logging.getLogger(__name__)

# At most this many distinct answers are returned (the best first); the rest must also clear
# the threshold.
MAX_ANSWERS = 3
# Read concurrent questions in one reader call (rag/microbatch.py)?  Off: it does not help on 2
# cores.  8 concurrent /v1/ask clients, default corpus, 4 alternating rounds: server CPU per
# request 59-63 ms unbatched vs 62-69 ms micro-batched, requests/s no better; answers identical
# for all 89 seed questions (eval/reader/microbatch.py, eval/reader/microbatch.json).
MICRO_BATCH = False
# While BM25 lags behind the loaded version (its sync failed: a full disk), a background thread
# retries this often.  Freeing disk space takes an operator minutes; one failed tantivy commit
# every 30 s costs nothing meanwhile, and a write retries at once anyway.
LEXICAL_RETRY_S = 30.0
# /readyz runs one real search (BM25 and dense) per loaded snapshot, again after this long: a
# probe costs one query encoding (~5 ms with MiniLM), and orchestrators poll every ~10 s.
READY_PROBE_S = 30.0


# Receives (stage, milliseconds) for every stage the pipeline runs: "retrieve", "read",
# "pipeline" (a whole ask), "index_update".  The HTTP edge injects one that feeds Server-Timing
# and the stage histogram (rag/api/observability.py); the pipeline knows nothing of HTTP.
StageRecorder = Callable[[str, float], None]


class Pipeline:
    def __init__(self, settings: Settings, encoder: Encoder | None = None, reader: Reader | None = None,
                 stage_recorder: StageRecorder | None = None):
        self.settings = settings
        self.stage_recorder = stage_recorder
        self.encoder = encoder or load_encoder(settings)
        self.reader = reader or load_reader(settings)
        self.retriever = Retriever(self.encoder)
        self._reading = MicroBatcher(self._read_items) if MICRO_BATCH else None
        self._index: Index | None = None
        self._lock = threading.Lock()
        self._compactor: threading.Thread | None = None
        self._lexical_retry: threading.Thread | None = None
        self._probe: tuple[int, int, float, str | None] | None = None  # (snapshot id, version, when, failure)
        self.models_ready = False

    # ------------------------------------------------------------------------- lifecycle
    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    def warm_up(self) -> None:
        self.encoder.warm_up()
        self.reader.warm_up()
        self.models_ready = True
        try:
            self.reload()
        except IndexNotFound as exc:
            log.warning("%s", exc)

    @property
    def ready(self) -> bool:
        return self.models_ready and self._index is not None

    def reload(self, seen: int | None = None) -> Index:
        """Open the latest committed version (reusing the open segments), checking it matches
        our encoder.  ``seen``: the version that made the caller reload; when another thread
        has loaded it (or a newer one) while we waited for the lock, that snapshot is returned,
        so many requests noticing one new version load it once."""
        with self._lock:
            current = self._index
            if current is not None and seen is not None and current.version >= seen:
                return current
            index = load_index(self.settings, self.encoder.name, previous=current, encoder=self.encoder)
            if current is None or index.version >= current.version:
                self._index = index
                self._watch_lexical(index)
                return index
            return current

    def _watch_lexical(self, index: Index) -> None:
        """Retry a lagging BM25 sync in the background (the snapshot serves its last commit)."""
        if not getattr(index, "lexical_stale", False) or (self._lexical_retry is not None and self._lexical_retry.is_alive()):
            return
        self._lexical_retry = threading.Thread(target=self._retry_lexical, name="rag-lexical-retry", daemon=True)
        self._lexical_retry.start()

    def _retry_lexical(self) -> None:
        while True:
            time.sleep(LEXICAL_RETRY_S)
            index = self._index
            if index is None or not getattr(index, "lexical_stale", False):
                return
            try:
                fresh = self.reload()  # the load tries the sync again
            except Exception:  # noqa: BLE001 - the loaded snapshot keeps serving; next round retries
                log.exception("reloading the index to bring BM25 up to date failed")
                continue
            if not getattr(fresh, "lexical_stale", False):
                log.info("BM25 of the index is up to date again (version %d)", fresh.version)
                return

    def search_failure(self) -> str | None:
        """None when a search over the live snapshot works (one hybrid query: encoder, BM25,
        dense, stored vectors and texts), else why not; rechecked per snapshot and every
        READY_PROBE_S (issue 20, item 9: /readyz said 200 while every dense search failed)."""
        index = self.index
        now = time.monotonic()
        probe = self._probe
        if probe is not None and probe[:2] == (id(index), index.version) and now - probe[2] < READY_PROBE_S:
            return probe[3]
        failure = None
        try:
            self.retriever.search_batch(index, ["readiness probe"], RetrievalParams.from_settings(self.settings, "hybrid", 1))
        except Exception as exc:  # noqa: BLE001 - reported as not ready, logged with its cause
            log.exception("the readiness search failed")
            failure = f"{type(exc).__name__}: {exc}"
        self._probe = (id(index), index.version, now, failure)
        return failure

    @property
    def loaded_index(self) -> Index | None:
        """The snapshot in memory, without checking for a newer one (metrics, health)."""
        return self._index

    @property
    def index(self) -> Index:
        """The live snapshot; picks up versions committed by any process (one indexed read)."""
        index = self._index
        latest = None
        if index is not None:
            latest = latest_version(index)
            if latest is not None and latest <= index.version:
                return index
        try:
            return self.reload(latest)
        except IndexNotFound as exc:
            raise NotReady(str(exc)) from exc

    def status(self) -> IndexStatus:
        """The live snapshot's version, passages and whether BM25 lags behind it (/readyz)."""
        index = self.index
        return IndexStatus(index.version, len(index), index.lexical_stale)

    def version(self) -> int:
        """The live snapshot's version (NotReady when there is no index)."""
        return self.index.version

    def source_urls(self, document_ids: Iterable[str]) -> dict[str, str]:
        """Each document's source_url metadata ("" when none), for chat citations' source links."""
        index = self.index
        return {doc_id: index.source_url(doc_id) for doc_id in document_ids}

    def largest_documents(self, limit: int) -> tuple[int, dict[str, int], list[Paragraph]]:
        """(version, {document id: characters} of the ``limit`` largest documents, largest first,
        their paragraphs in that order), all from one snapshot: the web page's examples."""
        index = self.index
        sizes = index.largest_documents(limit)
        return index.version, sizes, [p for doc_id in sizes for p in index.paragraphs_of(doc_id)]

    # ------------------------------------------------------------------------- questions
    def validate_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequest("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidRequest(f"the question is longer than {self.settings.max_question_chars} characters")
        return question.strip()

    def _record(self, stage: str, milliseconds: float) -> None:
        if self.stage_recorder is not None:
            self.stage_recorder(stage, milliseconds)

    def search(self, query: str, top_k: int | None = None, mode: str | None = None) -> SearchResult:
        return self.search_batch([query], top_k, mode)[0]

    def search_batch(self, queries: list[str], top_k: int | None = None, mode: str | None = None) -> list[SearchResult]:
        """Passages for many queries with one encoder call; per-query timings are the batch's
        time divided evenly among its queries."""
        queries = [self.validate_question(q) for q in queries]
        params = RetrievalParams.from_settings(self.settings, mode, top_k)
        started = time.perf_counter()
        found = self.retriever.search_batch(self.index, queries, params)
        elapsed = (time.perf_counter() - started) * 1000
        self._record("retrieve", elapsed)
        return [SearchResult(passages, {"retrieve": elapsed / len(queries)}) for passages in found]

    def ask(self, question: str, top_k: int | None = None, mode: str | None = None) -> QAResult:
        return self.ask_batch([question], top_k, mode)[0]

    def ask_batch(self, questions: list[str], top_k: int | None = None, mode: str | None = None,
                  threshold: float | None = None) -> list[QAResult]:
        """Answer many questions with one encoder call and batched reading (eval, bulk API).

        ``threshold``: this call's answer threshold (None: the service's, ``self.threshold``);
        the evaluation harness asks with 0 to see the candidates of abstentions too.
        Per-question timings are the batch's time divided evenly among its questions.
        """
        started = time.perf_counter()
        questions = [self.validate_question(q) for q in questions]
        shown_k = top_k or self.settings.top_k
        params = RetrievalParams.from_settings(self.settings, mode, max(shown_k, self.settings.reader_top_k))
        index = self.index
        retrieved = self.retriever.search_batch(index, questions, params)
        retrieved_at = time.perf_counter()
        to_read = [i for i, passages in enumerate(retrieved) if passages]
        items = [(questions[i], retrieved[i][: self.settings.reader_top_k]) for i in to_read]
        outputs = self._reading.submit(items) if self._reading is not None else self._read_items(items)
        read_at = time.perf_counter()
        self._record("retrieve", (retrieved_at - started) * 1000)
        self._record("read", (read_at - retrieved_at) * 1000)
        by_question = dict(zip(to_read, outputs, strict=True))
        n = len(questions)
        timings = {
            "retrieve": (retrieved_at - started) * 1000 / n,
            "read": (read_at - retrieved_at) * 1000 / n,
        }
        threshold = self.threshold if threshold is None else threshold
        results = []
        for i, question in enumerate(questions):
            given, abstention = self._decide(index, by_question.get(i), threshold)
            results.append(QAResult(question, given, retrieved[i][:shown_k], dict(timings), abstention))
        total = (time.perf_counter() - started) * 1000
        self._record("pipeline", total)
        for result in results:
            result.timings_ms["total"] = total / n
        return results

    def _read_items(self, items: list[tuple[str, list[RetrievedPassage]]]) -> list[ReaderOutput]:
        # Tables are read as "Header: cell" prose; spans come back in source characters.
        return read_with_views(self.reader, [q for q, _ in items], [p for _, p in items], top_n=MAX_ANSWERS)

    def _decide(self, index: Index, output: ReaderOutput | None, threshold: float) -> tuple[list[Answer], NoAnswer | None]:
        """Apply the answer threshold: answers above it, or the reason for abstaining."""
        if output is None:
            return [], no_answer(Cause.NO_PASSAGE)
        given = [self._answer(index, span) for span in output.spans if answers(span.score, threshold)]
        if given:
            return given, None
        if not output.spans:
            return [], no_answer(Cause.NO_CANDIDATE)
        return [], no_answer(Cause.BELOW_THRESHOLD, output.spans[0].score, threshold)

    @property
    def threshold(self) -> float:
        if self.settings.answer_threshold is not None:
            return self.settings.answer_threshold
        return self.reader.default_threshold

    def _answer(self, index: Index, span: AnswerSpan) -> Answer:
        answer = self._cite(index, span)
        answer.supporting = [self._cite(index, s).citation for s in span.supporting]
        return answer

    def _cite(self, index: Index, span: AnswerSpan) -> Answer:
        paragraph = span.retrieved.paragraph
        ctx_start, ctx_end = sentence_around(paragraph.text, span.start, span.end)
        # The title the passage was stored with: no document row is read per answer.
        title = span.retrieved.passage.title
        citation = Citation(
            document_id=paragraph.document_id,
            title=title,
            paragraph_index=paragraph.paragraph_index,
            paragraph_text=paragraph.text,
            answer_start=span.start,
            answer_end=span.end,
            doc_start=paragraph.doc_start,
            doc_end=paragraph.doc_end,
            section=paragraph.section,
            pages=list(paragraph.pages),
        )
        return Answer(text=span.text, score=round(span.score, 4), context=paragraph.text[ctx_start:ctx_end], citation=citation,
                      context_start=ctx_start, context_end=ctx_end)

    # ------------------------------------------------------------------------- documents
    def documents(self, limit: int | None = None, after: str | None = None) -> list[dict]:
        """One page of document infos by id (``after``: the last id of the previous page)."""
        try:
            index = self.index
        except NotReady:
            return []
        return index.document_infos(limit=limit, after=after)

    def document_detail(self, document_id: str) -> tuple[Document, dict, list[Paragraph]]:
        """A document, its origin and passage count, and its paragraphs, all from one snapshot (a delete and
        re-create between reads must not pair one version's text with another's paragraphs);
        the work is proportional to the document, not the corpus."""
        index = self.index
        stored = index.documents.get(document_id)
        if stored is None:
            raise DocumentNotFound(f"no document with id {document_id!r}")
        info = {"origin": stored.origin, "passages": index.passage_count(document_id)}
        return stored.document, info, index.paragraphs_of(document_id)

    def documents_outside(self, paths: Iterable[Path]) -> list[dict]:
        """Infos of the indexed documents that no file under ``paths`` gave: other folders' files
        and uploads (``rag index FOLDER`` keeps them, and says so)."""
        roots = [Path(p).resolve() for p in paths]

        def inside(info: dict) -> bool:
            source = info.get("source_path")
            if info.get("origin") != "file" or not source:
                return False
            path = Path(source).resolve()
            return any(path == root or path.is_relative_to(root) for root in roots)

        return [info for info in self.documents() if not inside(info)]

    def _apply(self, **changes) -> IndexReport:
        started = time.perf_counter()
        builder = make_writer(self.settings, self.encoder)
        try:
            index, report = builder.apply(self.index_dir, previous=self._index, **changes)
        finally:
            self._record("index_update", (time.perf_counter() - started) * 1000)
        with self._lock:  # only the swap; a newer version another thread loaded stays
            if self._index is None or index.version > self._index.version:
                self._index = index
        self._watch_lexical(index)
        self._schedule_compaction()
        return report

    def _schedule_compaction(self) -> None:
        """Merge segments in a background thread when the index asks (the embedded index's policy)."""
        if not self.settings.background_compaction or (self._compactor is not None and self._compactor.is_alive()):
            return
        if not compaction_due(self.settings):
            return
        self._compactor = threading.Thread(target=self._compact_quietly, name="rag-compaction", daemon=True)
        self._compactor.start()

    def _compact_quietly(self) -> None:
        try:
            compact_index(self.settings)
        except Exception:  # noqa: BLE001 - a failed merge leaves the previous commit; the next write retries
            log.exception("background compaction failed")

    def compact(self) -> int:
        """Merge until the policy is satisfied, in this thread (``rag index``); steps run."""
        if self._compactor is not None:
            self._compactor.join()
        steps = compact_index(self.settings)
        if steps:
            self.reload()
        return steps

    def upsert_documents(self, documents: Iterable[Document], origin: str = "upload",
                         refuse_overwrite: Collection[str] = ()) -> IndexReport:
        """Store the documents.  ``refuse_overwrite``: ids that may only replace a document from the
        same file or, for text, with the same title; else DocumentConflict, checked by the writer
        under its lock (rag/store/protocol.py, ``IndexWriter.apply``)."""
        return self._apply(upserts=list(documents), origin=origin, refuse_overwrite=refuse_overwrite)

    def delete_document(self, document_id: str) -> IndexReport:
        if document_id not in self.index.documents:
            raise DocumentNotFound(f"no document with id {document_id!r}")
        return self._apply(deletes=[document_id])

    def index_paths(self, paths: Iterable[Path], only: bool = False) -> IndexReport:
        """``rag index``: sync the index with the supported files under ``paths``; with ``only``,
        every other document (another folder's files, uploads, the example corpus) is removed in
        the same commit, so the index holds just these files."""
        paths = [Path(p) for p in paths]
        # This index's limits (not the environment's), the sandbox included; files on disk have
        # no byte limit of their own.
        ingested = load_documents(paths, replace(IngestLimits.from_settings(self.settings), max_file_bytes=None))
        deletes = [info["document_id"] for info in self.documents_outside(paths)] if only else []
        report = self._apply(upserts=ingested.documents, deletes=deletes, origin="file", sync_roots=paths)
        report.skipped = ingested.skipped + report.skipped
        return report
