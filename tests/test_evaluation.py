"""`rag eval`: gold files, metric arithmetic, SQuAD/BEIR loaders and the command (fake encoder)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rag.evaluation import metrics as M
from rag.evaluation.command import eval_command
from rag.evaluation.datasets import load_beir, load_squad
from rag.evaluation.gold import GoldFormatError, contains, doc_matches, load_gold
from rag.evaluation.report import DIAGNOSTICS_FILE, PLOTS, REPORT_FILE
from rag.evaluation.runner import CATEGORIES, Record, categorize, score_prediction

ROOT = Path(__file__).resolve().parent.parent
SEED_GOLD = ROOT / "eval" / "seed_gold.jsonl"
FAKE_ENV = {"RAG_EMBEDDING_MODEL": "hashing:256", "RAG_READER": "heuristic"}

QA_KEYS = {"em", "f1", "has_answer_em", "has_answer_f1", "no_answer_accuracy", "questions"}
RETRIEVAL_KEYS = {"recall@1", "recall@5", "recall@20", "mrr@5", "citation_accuracy", "p50_ms", "p95_ms"}
BEIR_KEYS = {"ndcg@10", "recall@100", "mrr@10", "queries", "p50_ms", "p95_ms"}

app = typer.Typer()
app.command("eval")(eval_command)


@app.callback()
def _group() -> None:
    """Keep `eval` a subcommand, as in `rag eval`."""


runner = CliRunner()


def _invoke(args: list[str]):
    result = runner.invoke(app, ["eval", *args], env=FAKE_ENV)
    assert result.exit_code == 0, result.output
    return result


def _last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- gold files
def test_seed_gold_answers_are_verbatim():
    documents = {p.stem: p.read_text(encoding="utf-8") for p in (ROOT / "corpus").glob("*.txt")}
    assert set(documents) == {"nato-indo-pacific-pivot", "korea-2024-nato-summit"}
    questions = load_gold(SEED_GOLD)
    answerable = [q for q in questions if q.answerable]
    assert len(questions) >= 60 and len(questions) - len(answerable) >= 12
    assert {q.doc for q in answerable} == set(documents), "questions on both documents"
    for q in answerable:
        assert q.doc in documents, q.id
        assert q.answers[0] in documents[q.doc], f"{q.id}: first answer is not verbatim"
        assert q.evidence and q.evidence in documents[q.doc], f"{q.id}: evidence is not verbatim"
        assert contains(q.evidence, q.answers[0]), f"{q.id}: the evidence does not contain the answer"
    for q in questions:
        if not q.answerable:
            assert q.doc is None and q.evidence is None


def test_load_gold_reports_every_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "q1", "question": "Fine?", "answers": ["yes"]}\n'
        "not json\n"
        '{"id": "q1", "question": "Duplicate id?", "answers": []}\n'
        '{"id": "q3", "question": "", "answers": []}\n'
        '{"id": "q4", "question": "Bad answers?", "answers": "yes"}\n'
        '{"id": "q5", "question": "Unknown field?", "answers": [], "answer": "x"}\n',
        encoding="utf-8",
    )
    with pytest.raises(GoldFormatError) as info:
        load_gold(path)
    message = str(info.value)
    assert "5 problem(s)" in message
    for line in (2, 3, 4, 5, 6):
        assert f"bad.jsonl:{line}:" in message
    with pytest.raises(GoldFormatError):
        load_gold(tmp_path / "missing.jsonl")


def test_doc_matching_and_containment():
    assert doc_matches(None, "anything")
    assert doc_matches("korea-2024-nato-summit", "korea-2024-nato-summit")
    assert doc_matches("korea-2024-nato-summit.txt", "korea-2024-nato-summit")
    assert doc_matches("Report.pdf", "x", "/data/Report.pdf")
    assert not doc_matches("nato-indo-pacific-pivot", "korea-2024-nato-summit")
    assert contains("Established by the US Congress in 1960, the Center", "the U.S. Congress")  # as SQuAD EM counts it
    assert contains("Established by the US Congress in 1960", "US Congress")
    assert contains("kept the Americans in, and the Germans down.", "the americans in and the germans down")
    assert not contains("in 19601", "1960")  # word boundaries after normalisation


# ------------------------------------------------------------------------ metric arithmetic
def _record(qid, answers, candidate, score, ranks, saw=None, threshold=0.5) -> Record:
    record = Record(qid, f"question {qid}?", answers, bool(answers), candidate=candidate, score=score,
                    relevant_ranks=ranks, reader_saw_gold=saw, latency_ms=float(len(qid)) * 10)
    score_prediction(record, threshold)
    record.category = categorize(record)
    return record


def _hand_records() -> list[Record]:
    return [
        _record("r1", ["Paris"], "Paris", 0.9, [1], True),
        _record("r2", ["the big red dog"], "red dog", 0.6, [3, 7], True),  # F1 = 2*(1*2/3)/(1+2/3) = 0.8
        _record("r3", ["42"], "41", 0.3, [], False),  # below the threshold: abstains
        _record("r4", [], "x", 0.2, None),  # unanswerable, abstains: scores 1
        _record("r5", [], "y", 0.7, None),  # unanswerable, answered: scores 0
    ]


def test_squad_metrics_by_hand():
    records = _hand_records()
    m = M.summarize(records, retrieval=True, citations=True)
    assert m["questions"] == 5 and m["answerable"] == 3 and m["unanswerable"] == 2
    assert m["em"] == 40.0  # r1, r4
    assert m["f1"] == 56.0  # (1 + 0.8 + 0 + 1 + 0) / 5
    assert m["has_answer_em"] == 33.33
    assert m["has_answer_f1"] == 60.0
    assert m["no_answer_accuracy"] == 50.0
    assert m["em_no_threshold"] == 20.0  # candidates only: r1 right, unanswerables all wrong
    # Sweep: answering r1 alone (t = 0.9) gives 1 + 2 unanswerables right = 3 / 5.
    assert m["best_f1"] == 60.0 and m["best_f1_threshold"] == 0.9
    assert [r.category for r in records] == ["correct", "reader_miss", "retrieval_miss", "correct", "answered_unanswerable"]
    assert m["categories"] == {"correct": 2, "retrieval_miss": 1, "reader_miss": 1, "wrong_abstention": 0, "answered_unanswerable": 1}
    assert set(m["categories"]) == set(CATEGORIES)


def test_retrieval_metrics_by_hand():
    m = M.retrieval_metrics(_hand_records())
    # First relevant ranks of the answerable questions: 1, 3, none.
    assert m["recall@1"] == round(1 / 3, 4)
    assert m["recall@5"] == round(2 / 3, 4)
    assert m["recall@20"] == round(2 / 3, 4)
    assert m["mrr@5"] == round((1 + 1 / 3 + 0) / 3, 4)
    curve = M.recall_curve(_hand_records())
    assert curve[1] == pytest.approx(1 / 3) and curve[3] == pytest.approx(2 / 3) and curve[20] == pytest.approx(2 / 3)


def test_citation_accuracy_and_latency():
    records = _hand_records()
    records[0].citation_correct, records[1].citation_correct = True, False
    assert M.citation_accuracy(records) == 0.5
    lat = M.latency_metrics(records)  # 20 ms each
    assert lat == {"p50_ms": 20.0, "p95_ms": 20.0}


def test_wrong_abstention_category():
    record = _record("w1", ["Paris"], "Paris", 0.2, [1], True)
    assert record.abstained and record.category == "wrong_abstention"


def test_beir_metrics_by_hand():
    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d3": 2}}
    run = {"q1": {"d9": 3.0, "d1": 2.0, "d2": 1.0}}  # q2 retrieved nothing: still counted, as 0
    m = M.beir_metrics(qrels, run)
    idcg = 1 + 1 / math.log2(3)
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@10"] == round(dcg / idcg / 2, 4)
    assert m["recall@100"] == 0.5
    assert m["mrr@10"] == 0.25
    assert m["queries"] == 2


# ----------------------------------------------------------------------------- datasets
def _squad_file(tmp_path: Path) -> Path:
    def qa(qid, question, answer=None, context=""):
        if answer is None:
            return {"id": qid, "question": question, "answers": [], "is_impossible": True}
        return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}], "is_impossible": False}

    p0 = "Alpha Town was founded in 1821 by Mary Brook. The town lies on the Green River."
    p1 = "The Alpha Town library holds 40,000 books. The library opened in 1990."
    p2 = "Beta Lake is 12 kilometres long and is home to the rare silver trout."
    data = {"version": "v2.0", "data": [
        {"title": "Alpha_Town", "paragraphs": [
            {"context": p0, "qas": [qa("a1", "Who founded Alpha Town?", "Mary Brook", p0), qa("a2", "In what year was Alpha Town founded?", "1821", p0)]},
            {"context": p1, "qas": [qa("a3", "How many books does the Alpha Town library hold?", "40,000", p1)]},
        ]},
        {"title": "Beta_Lake", "paragraphs": [
            {"context": p2, "qas": [qa("b1", "What rare fish lives in Beta Lake?", "silver trout", p2), qa("b2", "Who owns Beta Lake?")]},
        ]},
    ]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_load_squad_and_sampling(tmp_path):
    squad = load_squad(_squad_file(tmp_path))
    assert squad.version == "2.0" and squad.has_unanswerable
    assert list(squad.paragraphs) == ["alpha-town-p0", "alpha-town-p1", "beta-lake-p0"]
    assert [q.id for q in squad.questions] == ["a1", "a2", "a3", "b1", "b2"]
    assert squad.questions[0].source_doc == "alpha-town-p0" and squad.questions[-1].answers == []
    sample = load_squad(_squad_file(tmp_path), limit=3, seed=7)
    again = load_squad(_squad_file(tmp_path), limit=3, seed=7)
    assert [q.id for q in sample.questions] == [q.id for q in again.questions] and len(sample.questions) == 3
    assert sample.total_questions == 5 and len(sample.paragraphs) == 3  # the corpus is never sampled


def _beir_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    _write_jsonl(folder / "corpus.jsonl", [
        {"_id": "d1", "title": "Solar power", "text": "Solar panels convert sunlight into electricity using photovoltaic cells."},
        {"_id": "d2", "title": "Wind power", "text": "Wind turbines turn moving air into electricity."},
        {"_id": "d3", "title": "Baking", "text": "An apple pie recipe: bake apples in pastry for forty minutes."},
        {"_id": "d4", "title": "Rivers", "text": "Rivers carry sediment to the sea."},
    ])
    _write_jsonl(folder / "queries.jsonl", [
        {"_id": "q1", "text": "how do photovoltaic solar panels work"},
        {"_id": "q2", "text": "apple pie baking time"},
        {"_id": "q3", "text": "a query without judgements"},
    ])
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n", encoding="utf-8")
    return folder


def test_load_beir(tmp_path):
    beir = load_beir(_beir_folder(tmp_path))
    assert set(beir.queries) == {"q1", "q2"} and beir.qrels["q2"] == {"d3": 1} and len(beir.corpus) == 4
    with pytest.raises(GoldFormatError):
        load_beir(tmp_path / "beir", split="dev")


# ------------------------------------------------------------------------------ command
def test_eval_gold_json_and_report(tmp_path, fake_pipeline):
    gold = _write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "q1", "question": "Who was NATO's first Secretary General?", "answers": ["Lord Hastings Lionel Ismay", "Ismay"],
         "doc": "nato-indo-pacific-pivot", "evidence": "first Secretary General, Lord Hastings Lionel Ismay"},
        {"id": "q2", "question": "In what year did the US Congress establish the East-West Center?", "answers": ["1960"],
         "doc": "korea-2024-nato-summit.txt"},
        {"id": "q3", "question": "What is the capital of Australia?", "answers": []},
    ])
    report = tmp_path / "report"
    result = _invoke([str(gold), "--index", str(fake_pipeline.index_dir), "--json", "--report", str(report)])
    body = _last_json(result)
    assert QA_KEYS | RETRIEVAL_KEYS <= set(body)
    assert body["questions"] == 3 and body["config"]["reader"] == "heuristic" and body["config"]["encoder"] == "hashing:256"
    assert body["em"] == 100.0 and body["f1"] == 100.0 and body["no_answer_accuracy"] == 100.0
    assert body["recall@1"] == 1.0 and body["mrr@5"] == 1.0 and body["citation_accuracy"] == 1.0
    for name in (REPORT_FILE, DIAGNOSTICS_FILE, "metrics.json", *PLOTS.values()):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert (report / PLOTS["recall"]).read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (report / DIAGNOSTICS_FILE).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and all(r["category"] in CATEGORIES for r in rows)
    assert "| em | 100.00 |" in (report / REPORT_FILE).read_text()


def test_eval_gold_for_documents_not_in_the_index_says_so(tmp_path, fake_pipeline):
    """A gold file whose "doc" fields name no indexed document printed recall@5 0.00 and
    citation_accuracy 0.00 as if retrieval had failed (issue 21): it says the documents are not
    in the index, scores by evidence text where the gold has it, and leaves the rest unjudged."""
    gold = _write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "q1", "question": "Who was NATO's first Secretary General?", "answers": ["Lord Hastings Lionel Ismay"],
         "doc": "my-notes.md", "evidence": "first Secretary General, Lord Hastings Lionel Ismay"},
        {"id": "q2", "question": "Who was NATO's first Secretary General?", "answers": ["Lord Hastings Lionel Ismay"], "doc": "other.pdf"},
    ])
    body = _last_json(_invoke([str(gold), "--index", str(fake_pipeline.index_dir), "--json", "--report", str(tmp_path / "report")]))
    assert "> note: 2 documents named in the gold file" in (tmp_path / "report" / REPORT_FILE).read_text()
    assert body["config"]["documents_not_in_index"] == ["my-notes.md", "other.pdf"]
    assert body["config"]["questions_scored_by_evidence"] == 1 and body["config"]["questions_not_judged_for_retrieval"] == 1
    assert body["recall@5"] == 1.0 and body["citation_accuracy"] == 1.0  # q1 by its evidence; q2 not judged
    text = _invoke([str(gold), "--index", str(fake_pipeline.index_dir)]).stdout
    assert "note: 2 documents named in the gold file's \"doc\" fields are not in the index" in text
    assert "my-notes.md, other.pdf" in text and "scored by their evidence text" in text and "left out of recall" in text
    # with no evidence anywhere, nothing is judged: no recall line at all rather than 0.00
    gold = _write_jsonl(tmp_path / "gold2.jsonl", [
        {"id": "q2", "question": "Who was NATO's first Secretary General?", "answers": ["Lord Hastings Lionel Ismay"], "doc": "other.pdf"}])
    text = _invoke([str(gold), "--index", str(fake_pipeline.index_dir)]).stdout
    metric_lines = [line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.split()]
    assert "recall@5" not in metric_lines and "citation_accuracy" not in metric_lines and "not in the index" in text


def test_eval_squad_reader_and_open(tmp_path):
    squad = _squad_file(tmp_path)
    reader = _last_json(_invoke(["--squad", str(squad), "--mode", "reader", "--json"]))
    assert QA_KEYS <= set(reader) and reader["questions"] == 5 and reader["unanswerable"] == 1
    assert reader["config"]["mode"] == "reader" and reader["config"]["squad_version"] == "2.0"
    assert reader["recall@5"] is None and reader["citation_accuracy"] is None  # no retrieval in reader mode
    opened = _last_json(_invoke(["--squad", str(squad), "--mode", "open", "--json", "--report", str(tmp_path / "rep")]))
    assert QA_KEYS | RETRIEVAL_KEYS <= set(opened)
    assert opened["config"]["index_documents"] == 3
    assert opened["recall@20"] == 1.0 and opened["paragraph_recall@20"] == 1.0  # three paragraphs: all retrieved
    limited = _last_json(_invoke(["--squad", str(squad), "--mode", "reader", "--limit", "2", "--seed", "1", "--json"]))
    assert limited["questions"] == 2


def test_eval_beir_bm25(tmp_path):
    body = _last_json(_invoke(["--beir", str(_beir_folder(tmp_path)), "--mode", "bm25", "--json"]))
    assert BEIR_KEYS <= set(body)
    assert body["queries"] == 2 and body["ndcg@10"] == 1.0 and body["recall@100"] == 1.0 and body["mrr@10"] == 1.0
    hybrid = _last_json(_invoke(["--beir", str(_beir_folder(tmp_path)), "--json"]))
    assert hybrid["config"]["mode"] == "hybrid" and hybrid["recall@100"] == 1.0


def test_eval_needs_exactly_one_source(tmp_path):
    result = runner.invoke(app, ["eval"], env=FAKE_ENV)
    assert result.exit_code == 2 and "exactly one" in result.output
    result = runner.invoke(app, ["eval", "--squad", "x.json", "--mode", "bm25"], env=FAKE_ENV)
    assert result.exit_code == 2 and "reader or open" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    result = runner.invoke(app, ["eval", str(bad), "--index", str(tmp_path / "none")], env=FAKE_ENV)
    assert result.exit_code == 2
