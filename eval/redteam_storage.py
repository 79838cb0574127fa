"""Replay issue 20's storage items against a live service on loopback: a full disk (item 2), one
large upload blocking every other write (item 8), damaged derived files (item 9).

    .venv/bin/python eval/redteam_storage.py [--out eval/redteam_storage.json]

Same table as eval/redteam.py (its Service and /healthz prober are reused): item, scenario,
what the issue and the code before the fix saw (this script run on commit 9a95361~1), what the
service answers now, pass/fail.  The full disk is a real 64 MB tmpfs when ``mount`` works (root), else
that row says it was skipped; the lexical-sync failure is injected as tantivy reports ENOSPC.
About 1-2 minutes on 2 loaded cores.  Exit status 1 when any scenario fails.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from redteam import QUESTION, Service, _healthz_while, report  # noqa: E402

from rag.embedding import HashingEncoder  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import lexical  # noqa: E402

Row = tuple[str, str, str, str, bool]
LOCAL = {"X-Requested-With": "redteam"}
WORDS = "harbour beacon council treaty summit signal pacific alliance policy member ocean defence north".split()


def _text(paragraphs: int, seed: int, marker: str = "") -> str:
    rng = np.random.default_rng(seed)
    return "\n\n".join(" ".join(rng.choice(WORDS, 60)) + f" {marker}." for _ in range(paragraphs))


def _settings(base: Path, settings: Settings, name: str) -> Settings:
    shutil.copytree(ROOT / "corpus", base / name / "corpus")
    return Settings(**{**settings.model_dump(), "index_dir": base / name / "index", "corpus_dir": base / name / "corpus"})


def _indexed(settings: Settings, encoder=None) -> Pipeline:
    pipeline = Pipeline(settings, encoder=encoder)
    pipeline.warm_up()
    pipeline.index_paths([settings.corpus_dir])
    return pipeline


def _status(call) -> int | str:
    try:
        return call().status_code
    except httpx.HTTPError as exc:  # the code before the fix dropped some connections
        return type(exc).__name__


def _reads(url: str) -> dict[str, int | str]:
    with httpx.Client(base_url=url, timeout=60) as http:
        return {"search": _status(lambda: http.post("/v1/search", json={"query": QUESTION})),
                "ask": _status(lambda: http.post("/v1/ask", json={"question": QUESTION})),
                "documents": _status(lambda: http.get("/v1/documents")),
                "readyz": _status(lambda: http.get("/readyz"))}


def _top(url: str, query: str, mode: str) -> str:
    """The document of the best passage of a search, "" when none or the search failed."""
    try:
        r = httpx.post(f"{url}/v1/search", json={"query": query, "mode": mode}, timeout=60)
    except httpx.HTTPError:
        return ""
    passages = r.json().get("passages", []) if r.status_code == 200 else []
    return passages[0]["document_id"] if passages else ""


def _print(row: Row) -> Row:
    print(f"{'PASS' if row[4] else 'FAIL'}  [{row[0]}] {row[1]}: {row[3]}", flush=True)
    return row


# ----------------------------------------------------------------------------- item 2
def full_tmpfs(base: Path, settings: Settings) -> Row:
    """Uploads on a real 64 MB filesystem until it is full, reads meanwhile, then space freed."""
    scenario = "uploads of ~230 KB on a 64 MB tmpfs until full, then reads, then space freed"
    before = ("issue: 500s past the limit, one committed, then every read 500; code before the fix (this replay): 3 x 201 then "
              "37 x 500, no 503; search/ask/documents/readyz 500 / connection reset / 500 / connection reset")
    disk = base / "tmpfs"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True).returncode:
        return _print(("20.2", scenario, before, "skipped: cannot mount a tmpfs here (needs root)", True))
    try:
        local = _settings(disk, settings, "full")
        pipeline = _indexed(local)
        filler = disk / "filler"
        free = shutil.disk_usage(disk).free
        filler.write_bytes(b"\0" * max(0, free - 12 * 2**20))  # leave ~12 MB: full after a few uploads
        statuses: list[int] = []
        retry_after: set[str] = set()
        with Service(local, pipeline) as url:
            def fill() -> None:
                with httpx.Client(base_url=url, timeout=120, headers=LOCAL) as http:
                    for i in range(40):
                        r = http.post("/v1/documents", json={"document_id": f"fill-{i}", "text": _text(600, i, f"fillmark{i}")})
                        statuses.append(r.status_code)
                        if r.status_code == 503:
                            retry_after.add(r.headers.get("retry-after", ""))
                        if statuses[-3:] == [503, 503, 503]:
                            return

            worst, _ = _healthz_while(url, fill, 300)
            reads = [_reads(url) for _ in range(2)]
            with httpx.Client(base_url=url, timeout=60) as http:
                try:
                    listed = {d["document_id"] for d in pipeline.documents()}
                except Exception as exc:  # noqa: BLE001 - the code before the fix failed every read here
                    listed = {f"unreadable: {type(exc).__name__}"}
                stored = {i for i in range(len(statuses)) if f"fill-{i}" in listed}
                filler.unlink()  # the operator frees space
                again = _status(lambda: http.post("/v1/documents", json={"document_id": "after-space", "text": _text(20, 99, "zorblaxafter")},
                                                  headers=LOCAL))
                try:
                    pipeline.reload()
                except Exception:  # noqa: BLE001 - as above
                    pass
                bm25 = _top(url, "zorblaxafter", "bm25")
        accepted = {i for i, code in enumerate(statuses) if code == 201}
        ok = (503 in statuses and 500 not in statuses and retry_after == {"300"} and stored == accepted
              and all(code == 200 for r in reads for code in r.values()) and again == 201 and bm25 == "after-space")
        now = (f"{len(accepted)} x 201 then {statuses.count(503)} x 503 (Retry-After {','.join(sorted(retry_after))}), "
               f"{statuses.count(500)} x 500; stored: {len(stored)} ({len(stored - accepted)} of them answered as refused); "
               f"search/ask/documents/readyz after (second round): {' / '.join(str(c) for c in reads[-1].values())}; after freeing "
               f"space: upload {again}, BM25 finds it: {bm25 == 'after-space'}; /healthz worst {worst * 1000:.0f} ms")
        return _print(("20.2", scenario, before, now, ok))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def failing_lexical_sync(base: Path, settings: Settings) -> Row:
    """tantivy's commit fails with ENOSPC after SQLite committed (the issue's 500-but-committed)."""
    local = _settings(base, settings, "lexical")
    pipeline = _indexed(local)
    real = lexical.sync

    def full(*args, **kwargs):
        raise ValueError('Failed to commit: IoError { io_error: Os { code: 28, kind: StorageFull, message: "No space left on device" } }')

    lexical.sync = full
    try:
        with Service(local, pipeline) as url:
            worst, status = _healthz_while(url, lambda: httpx.post(f"{url}/v1/documents", json={
                "document_id": "late-bm25", "text": "The zorblax beacon stands on the northern pier."}, headers=LOCAL, timeout=60).status_code, 60)
            reads = [_reads(url) for _ in range(2)]
            dense = _top(url, "zorblax northern pier", "dense")
            lexical.sync = real
            pipeline.reload()  # what the background retry does once space is back
            bm25 = _top(url, "zorblax northern pier", "bm25")
    finally:
        lexical.sync = real
    codes = " / ".join(str(c) for c in reads[-1].values())
    ok = status == 201 and all(c == 200 for r in reads for c in r.values()) and dense == bm25 == "late-bm25"
    now = (f"upload {status}; search/ask/documents/readyz (second round) {codes}; dense finds it: "
           f"{dense == 'late-bm25'}; BM25 after the retry: {bm25 == 'late-bm25'}; /healthz worst {worst * 1000:.0f} ms")
    return _print(("20.2", "tantivy's commit fails with ENOSPC after SQLite committed (injected)",
                   "upload 500 yet committed; search/ask/documents/readyz 500 / connection reset / 500 / connection reset; "
                   "dense does not find it (code before the fix, this replay)", now, ok))


# ----------------------------------------------------------------------------- item 8
class SlowEncoder(HashingEncoder):
    """The hashing encoder at ~the speed of MiniLM on a loaded core for large batches (20 ms a
    passage from the fifth on): a 512 KB upload embeds for seconds, a one-line one does not."""

    def encode(self, texts, batch_size: int = 64, show_progress=None):
        time.sleep(0.02 * max(0, len(texts) - 4))
        return super().encode(texts, batch_size, show_progress)


def writer_lock(base: Path, settings: Settings) -> Row:
    local = _settings(base, settings, "lock")
    pipeline = _indexed(local, encoder=SlowEncoder(256))
    big = _text(900, 7, "bigupload")  # ~512 KB
    timings: dict[str, float] = {}
    with Service(local, pipeline) as url:
        def large() -> int:
            started = time.perf_counter()
            code = httpx.post(f"{url}/v1/documents", json={"document_id": "large", "text": big}, headers=LOCAL, timeout=300).status_code
            timings["large"] = time.perf_counter() - started
            return code

        thread = threading.Thread(target=large)
        thread.start()
        time.sleep(1.0)
        started = time.perf_counter()
        worst, small = _healthz_while(url, lambda: httpx.post(f"{url}/v1/documents", json={
            "document_id": "small", "text": "One line about the zorblax."}, headers=LOCAL, timeout=300).status_code, 300)
        timings["small"] = time.perf_counter() - started
        thread.join(300)
    ok = small == 201 and timings["small"] < 2.0 and timings["small"] < timings["large"]
    now = f"one-line upload {small} in {timings['small']:.2f} s while a {len(big) // 1024} KB one took {timings['large']:.1f} s; /healthz worst {worst * 1000:.0f} ms"
    return _print(("20.8", f"one-line upload 1 s after a {len(big) // 1024} KB upload (embedding 20 ms a passage)",
                   "issue: waited 38.6 s behind a 43.7 s upload; code before the fix (this replay): 201 in 17.48 s behind an 18.3 s one",
                   now, ok))


# ----------------------------------------------------------------------------- item 9
def _damage_term(index_dir: Path) -> None:
    term = next((index_dir / lexical.FOLDER).glob("*.term"))
    term.write_bytes(term.read_bytes()[:4])


def _damage_vectors(index_dir: Path) -> None:
    vectors = next((index_dir / "segments").glob("s-*/vectors.npy"))
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])


def _damage_dense(index_dir: Path) -> None:
    for path in next((index_dir / "segments").glob("s-*/dense")).iterdir():
        path.write_bytes(b"\xff\xfe garbled " * 20)


DAMAGES = [
    ("truncated tantivy .term file (4 bytes)", _damage_term, "start failed: PanicException: assertion failed: start <= orig_range.end"),
    ("truncated vectors.npy", _damage_vectors, "/readyz 200; search dense/bm25/hybrid 500/200/500; ask 500"),
    ("garbled dense/ (FAISS files)", _damage_dense, "start failed: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff"),
]


def recovery(base: Path, settings: Settings) -> list[Row]:
    rows = []
    for n, (what, damage, before) in enumerate(DAMAGES):
        local = _settings(base, settings, f"damage{n}")
        _indexed(local)
        damage(local.index_dir)
        pipeline = Pipeline(local)
        started = time.perf_counter()
        try:
            pipeline.warm_up()
        except BaseException as exc:  # noqa: BLE001 - a tantivy panic is a BaseException: reported, not raised
            if isinstance(exc, KeyboardInterrupt):
                raise
            rows.append(_print(("20.9", what, before, f"start failed: {type(exc).__name__}: {str(exc)[:80]}", False)))
            continue
        took = time.perf_counter() - started
        with Service(local, pipeline) as url:
            ready = httpx.get(f"{url}/readyz").status_code
            codes = {mode: httpx.post(f"{url}/v1/search", json={"query": QUESTION, "mode": mode}).status_code for mode in ("dense", "bm25", "hybrid")}
            answer = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60)
        answered = answer.status_code == 200 and bool(answer.json()["answers"]) and "Ismay" in answer.json()["answers"][0]["text"]
        ok = ready == 200 and set(codes.values()) == {200} and answered
        now = (f"started in {took:.1f} s (rebuilt from store.sqlite); /readyz {ready}; search dense/bm25/hybrid "
               f"{'/'.join(str(c) for c in codes.values())}; ask {answer.status_code}, answered: {answered}")
        rows.append(_print(("20.9", what, before, now, ok)))
    return rows


def storage_cases(base: Path, settings: Settings) -> list[Row]:
    """Every storage scenario: (item, scenario, before, now, passed); a scenario that raises is a
    failed row naming the exception (how the code before the fix was measured)."""
    rows: list[Row] = []
    for item, scenario in [("20.2", failing_lexical_sync), ("20.2", full_tmpfs), ("20.8", writer_lock), ("20.9", recovery)]:
        try:
            found = scenario(base, settings)
        except Exception as exc:  # noqa: BLE001 - reported as the scenario's result
            found = _print((item, scenario.__name__, "", f"raised {type(exc).__name__}: {str(exc)[:160]}", False))
        rows += found if isinstance(found, list) else [found]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="rag-redteam-storage-"))
    settings = Settings(embedding_model="hashing:256", reader="heuristic", rate_limit="", log_json=False, header_timeout_s=3.0,
                        max_parse_seconds=5.0, background_compaction=False)
    try:
        rows = storage_cases(base, settings)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report(rows, time.monotonic() - started, args.out)


if __name__ == "__main__":
    sys.exit(main())
