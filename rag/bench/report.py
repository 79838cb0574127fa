"""eval/BENCHMARKS.md and eval/bench/*.png from the JSON results in eval/bench/."""
from __future__ import annotations

from pathlib import Path

from rag.bench.common import read_json

SECTIONS = ("build", "latency", "http", "scale", "writes", "service")
TARGETS = {
    "search_p50_ms": 15, "ask_p50_ms": 100, "ask_rps_c8": 20, "ask_p95_c8_ms": 500,
    "scale_search_p50_ms": 20, "scale_recall": 0.95, "scale_memory_mb": 2048, "build_paragraphs_per_s": 60,
}


def _fmt(x, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def plots(results: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    scale = results.get("scale")
    if scale and scale.get("vectors"):
        rows = scale["vectors"]
        sizes = [r["passages"] for r in rows]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(sizes, [r["search_ms"]["p50"] for r in rows], "o-", label="auto index p50")
        axes[0].plot(sizes, [r["search_ms"]["p95"] for r in rows], "o--", label="auto index p95")
        exact = [(r["passages"], r["exact_search_ms"]["p50"]) for r in rows if r.get("exact_search_ms")]
        if exact:
            axes[0].plot(*zip(*exact, strict=True), "s:", label="exact (flat) p50")
        axes[0].set(xscale="log", yscale="log", xlabel="passages", ylabel="ms per query (k=50)", title="vector search latency")
        axes[1].plot(sizes, [r["recall_at_10"] for r in rows], "o-")
        axes[1].axhline(0.95, color="grey", linestyle=":")
        axes[1].set(xscale="log", ylim=(0.9, 1.001), xlabel="passages", ylabel="recall@10 vs exact", title="recall")
        axes[2].plot(sizes, [r["index_file_mb"] for r in rows], "o-", label="index file")
        axes[2].plot(sizes, [r["memory_mb"]["heap"] for r in rows], "o--", label="heap after queries")
        axes[2].set(xscale="log", yscale="log", xlabel="passages", ylabel="MB", title="index memory")
        for ax in axes:
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        axes[2].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "scale.png", dpi=110)
        plt.close(fig)
        made.append("scale.png")
    http = results.get("http")
    if http and http.get("levels"):
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for ax, path in zip(axes, ("/v1/search", "/v1/ask"), strict=True):
            rows = [r for r in http["levels"] if r["path"] == path]
            labels = [str(r["concurrency"]) for r in rows]
            x = range(len(rows))
            for offset, key in ((-0.25, "p50"), (0, "p95"), (0.25, "p99")):
                ax.bar([i + offset for i in x], [r["latency_ms"].get(key, 0) for r in rows], width=0.25, label=key)
            ax.set_xticks(list(x), labels)
            ax.set(xlabel="concurrent clients", ylabel="ms", title=f"{path} over HTTP", yscale="log")
            for i, r in enumerate(rows):
                ax.annotate(f"{r['requests_per_s']:.0f}/s", (i, r["latency_ms"].get("p99", 1)), ha="center", fontsize=8)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(folder / "http.png", dpi=110)
        plt.close(fig)
        made.append("http.png")
    return made


def render(folder: Path, target: Path) -> Path:
    results = {name: read_json(folder / f"{name}.json") for name in SECTIONS}
    made = plots(results, folder)
    lines = ["# Benchmarks", "", "Speed, scale and memory of the service, measured by `rag bench` (rag/bench/).",
             "Benchmarks are not tests: CI never times anything.  Every table names the command that",
             "reproduces it; the raw numbers are in `eval/bench/*.json`.", ""]
    lines += _machine(results)
    lines += _targets(results)
    lines += _build(results.get("build"))
    lines += _latency(results.get("latency"))
    lines += _http(results.get("http"), "http.png" in made)
    lines += _scale(results.get("scale"), "scale.png" in made)
    lines += _writes(results.get("writes"))
    lines += _service(results.get("service"))
    notes = folder / "NOTES.md"
    if notes.is_file():
        lines += ["", notes.read_text().rstrip(), ""]
    target.write_text("\n".join(lines) + "\n")
    return target


def _machine(results: dict) -> list[str]:
    out = ["## Machine", ""]
    for name in SECTIONS:
        r = results.get(name)
        if not r:
            continue
        m = r["machine"]
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        out.append(f"- `{name}`: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}; {m['date']}, "
                   f"commit {m['commit'] or '?'}; load average at start {m['load_average']} "
                   f"(other jobs shared these cores: figures are upper bounds on an idle machine). {versions}.")
    return out + [""]


def _targets(results: dict) -> list[str]:
    t = TARGETS
    rows = []
    http = results.get("http") or {}
    levels = http.get("levels", [])

    def level(path, c):
        return next((r for r in levels if r["path"] == path and r["concurrency"] == c), None)

    s1, a1, a8 = level("/v1/search", 1), level("/v1/ask", 1), level("/v1/ask", 8)
    if s1:
        v = s1["latency_ms"]["p50"]
        rows.append(("/v1/search p50, sequential HTTP, default corpus", f"<= {t['search_p50_ms']} ms", f"{v:.1f} ms", _mark(v <= t["search_p50_ms"])))
    if a1:
        v = a1["latency_ms"]["p50"]
        rows.append(("/v1/ask p50, sequential HTTP, default corpus", f"<= {t['ask_p50_ms']} ms", f"{v:.1f} ms", _mark(v <= t["ask_p50_ms"])))
    if a8:
        rps, p95 = a8["requests_per_s"], a8["latency_ms"]["p95"]
        rows.append(("/v1/ask at 8 concurrent clients", f">= {t['ask_rps_c8']}/s, p95 <= {t['ask_p95_c8_ms']} ms",
                     f"{rps:.1f}/s, p95 {p95:.0f} ms", _mark(rps >= t["ask_rps_c8"] and p95 <= t["ask_p95_c8_ms"])))
    scale = results.get("scale") or {}
    big = [r for r in scale.get("vectors", []) if r["passages"] >= 10**6]
    if big:
        r = big[-1]
        mem = r["memory_mb"]["after_queries"]  # heap plus the pages of the mapped file that queries touched
        ok = r["search_ms"]["p50"] <= t["scale_search_p50_ms"] and r["recall_at_10"] >= t["scale_recall"] and mem <= t["scale_memory_mb"]
        rows.append((f"{r['passages']:,} passages: vector search", "p50 <= 20 ms, recall@10 >= 0.95, memory <= 2 GB",
                     f"{r['search_ms']['p50']:.1f} ms, recall {r['recall_at_10']:.3f}, {mem:,.0f} MB", _mark(ok)))
    build = results.get("build")
    if build:
        v = build["squad"]["paragraphs_per_s"]
        rows.append(("index build, SQuAD paragraphs", f">= {t['build_paragraphs_per_s']}/s (Haystack: 31)", f"{v:.1f}/s", _mark(v >= t["build_paragraphs_per_s"])))
    if not rows:
        return []
    out = ["## Targets", "", "| target | wanted | measured | |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out + [""]


def _build(r: dict | None) -> list[str]:
    if not r:
        return []
    s = r["squad"]
    return ["## Index build", "", f"Reproduce: `{r['command']}`", "",
            "| documents | passages | model load | build | of which embedding | other | paragraphs/s | passages/s | peak RSS |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {s['documents']:,} | {s['passages']:,} | {s['model_load_s']} s | {s['build_s']} s | {s['embed_s']} s | {s['other_s']} s | "
            f"{s['paragraphs_per_s']} | {s['passages_per_s']} | {s['peak_rss_mb']:,.0f} MB |", "",
            f"Embedding model `{s['model']}`, vector index `{s['dense'].get('index', s['dense'].get('backend'))}`; "
            f"load average {s['load_average_before']} before, {s['load_average_after']} after.", ""]


def _pct(p: dict) -> str:
    return f"{_fmt(p.get('p50'))} / {_fmt(p.get('p95'))} / {_fmt(p.get('p99'))}"


def _latency(r: dict | None) -> list[str]:
    if not r:
        return []
    out = ["## In-process latency", "", f"Reproduce: `{r['command']}`", "",
           "One question at a time through `Pipeline` (no HTTP); milliseconds p50 / p95 / p99.", "",
           "| corpus | passages | reader | encode query | BM25 | vector search | search | ask | ask_batch (32) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, row in r["corpora"].items():
        st = row["stages_ms"]
        out.append(f"| {name} | {row['passages']:,} | {row['reader']} | {_pct(st['encode_query'])} | {_pct(st['bm25_scores'])} | "
                   f"{_pct(st['vector_search'])} | {_pct(row['search_ms'])} | {_pct(row['ask_ms'])} | {row['ask_batch']['questions_per_s']} q/s |")
    loads = "; ".join(f"{n}: {row['load_average_before']} → {row['load_average_after']}" for n, row in r["corpora"].items())
    return out + ["", f"Load average before → after: {loads}.", ""]


def _http(r: dict | None, plot: bool) -> list[str]:
    if not r:
        return []
    out = ["## HTTP latency and throughput", "", f"Reproduce: `{r['command']}`", "",
           f"`rag serve` on 127.0.0.1 ({r.get('corpus', 'default corpus')}, {r.get('passages', '?')} passages, reader {r.get('reader', '?')}); "
           "closed-loop clients on the same machine (they share its cores with the server).", "",
           "| endpoint | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | load avg before → after |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in r["levels"]:
        lat = row["latency_ms"]
        extra = f" ({row['questions_per_s']} questions/s, {row['batch_size']} per request)" if "questions_per_s" in row else ""
        out.append(f"| `{row['path']}`{extra} | {row['concurrency']} | {row['requests']} | {row['requests_per_s']} | {_fmt(lat.get('p50'))} | "
                   f"{_fmt(lat.get('p95'))} | {_fmt(lat.get('p99'))} | {row['errors'] or 0} | {row['load_average_before']} → {row['load_average_after']} |")
    timing = [(row["path"], row["concurrency"], row.get("server_timing_p50_ms")) for row in r["levels"] if row.get("server_timing_p50_ms")]
    if timing:
        out += ["", "Server-side p50 per stage, from the `Server-Timing` header (ms; `app` = all time inside the application):", ""]
        for path, c, stages in timing:
            out.append(f"- `{path}` x{c}: " + ", ".join(f"{k} {v}" for k, v in stages.items()))
    if plot:
        out += ["", "![HTTP latency by concurrency](bench/http.png)"]
    return out + [""]


def _scale(r: dict | None, plot: bool) -> list[str]:
    if not r:
        return []
    out = ["## Scale: 10^3 to 10^6 passages", "", f"Reproduce: `{r['command']}`", "",
           r.get("description", ""), "",
           "| passages | index (auto) | build | search p50 / p95 / p99 ms (k=50) | exact search p50 ms | recall@10 | index file | resident after queries (file-backed) | heap |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in r.get("vectors", []):
        m = row["memory_mb"]
        exact = row.get("exact_search_ms") or {}
        out.append(f"| {row['passages']:,} | {row['index']} | {row['build_s']} s | {_pct(row['search_ms'])} | {_fmt(exact.get('p50'))} | "
                   f"{row['recall_at_10']:.3f} | {row['index_file_mb']:,.1f} MB | {m['after_queries']:,.1f} MB ({m['of_which_file_backed']:,.1f}) | {m['heap']:,.1f} MB |")
    if r.get("text"):
        out += ["", "Full hybrid retrieval over SQuAD texts cycled to the size (BM25 + vectors + fusion; query encoding excluded, "
                "it is constant: see the in-process table):", "",
                "| passages | index | build (BM25 + vectors, no embedding) | BM25 p50 / p95 / p99 ms | hybrid search p50 / p95 / p99 ms |", "|---|---|---|---|---|"]
        for row in r["text"]:
            out.append(f"| {row['passages']:,} | {row['index']} | {row['build_s_without_embedding']} s | {_pct(row['bm25_ms'])} | {_pct(row['hybrid_without_encoding_ms'])} |")
    if plot:
        out += ["", "![latency, recall and memory by corpus size](bench/scale.png)"]
    return out + [""]


def _writes(result: dict | None) -> list[str]:
    """Upload and delete of one small document as the corpus grows (rag/bench/writes.py)."""
    if not result:
        return []
    out = ["## Writes: one small document at growing corpus sizes", "", result.get("description", ""), "",
           f"Reproduce: `{result['command']}`", "",
           "| passages | upload p50 / p95 ms | delete p50 / p95 ms | compaction per round p50 ms | segments after | BM25 p50 ms | hybrid (no encoding) p50 ms | bulk build s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        out.append(f"| {r['passages']:,} | {r['upload_ms']['p50']:.0f} / {r['upload_ms']['p95']:.0f} | "
                   f"{r['delete_ms']['p50']:.0f} / {r['delete_ms']['p95']:.0f} | {r['compaction_ms_per_round']['p50']:.0f} | "
                   f"{r['segments_after']} | {r.get('bm25_ms', {}).get('p50', '-')} | {r.get('hybrid_without_encoding_ms', {}).get('p50', '-')} | "
                   f"{r['bulk_build_s']} |")
    return out + [""]


def _service(result: dict | None) -> list[str]:
    """`rag serve` over the largest writes index (rag/bench/service.py)."""
    if not result:
        return []
    out = ["## The service at scale", "", result.get("description", ""), "", f"Reproduce: `{result['command']}`", "",
           "| passages | start-up to /readyz | server RSS (file-backed) after writes | /v1/search p50 / p95 ms | hybrid recall@1 / @5 (distinct texts in top 5) | upload p50 ms | delete p50 ms |",
           "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        m = r["memory_after_writes"]
        out.append(f"| {r['passages']:,} | {r['startup_to_readyz_s']} s | {m['rss_mb']:,.0f} MB ({m['file_backed_mb']:,.0f}) | "
                   f"{r['search_ms']['p50']:.1f} / {r['search_ms']['p95']:.1f} | {r['hybrid_recall_at_1']:.3f} / {r['hybrid_recall_at_5']:.3f} ({r['distinct_texts_in_top_5_mean']}) | "
                   f"{r['upload_ms']['p50']:.0f} | {r['delete_ms']['p50']:.0f} |")
    return out + [""]
