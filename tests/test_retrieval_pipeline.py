"""Retrieval modes, fusion, and the pipeline's answers and abstentions (fake encoder)."""
from __future__ import annotations

import pytest

from support import assert_offsets
from rag.errors import InvalidRequest
from rag.ingest import document_from_text
from rag.api.schemas import ask_response


def _documents(pipeline) -> dict[str, str]:
    return {doc_id: stored.document.text for doc_id, stored in pipeline.index.documents.items()}


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_finds_the_ismay_paragraph(fake_pipeline, mode):
    recorded: dict[str, float] = {}
    fake_pipeline.stage_recorder = recorded.__setitem__
    result = fake_pipeline.search("NATO first Secretary General Ismay", top_k=3, mode=mode)
    passages, timings = result.passages, result.timings_ms
    assert passages[0].passage.text.startswith("In the words of NATO’s first Secretary General")
    assert [p.rank for p in passages] == [1, 2, 3]
    # the reported time is the measured retrieval stage (one query: all of it), not a placeholder
    assert set(recorded) == {"retrieve"} and timings == {"retrieve": recorded["retrieve"]} and timings["retrieve"] > 0
    scores = passages[0].scores
    if mode == "bm25":
        assert scores.bm25 > 0 and scores.dense is None and passages[0].score == scores.bm25
    if mode == "dense":
        assert scores.bm25 is None and 0 < scores.dense <= 1 and passages[0].score == pytest.approx(scores.dense)
    if mode == "hybrid":
        assert scores.bm25 > 0 and scores.dense > 0
        # both retrievers ranked it first: fused = (w_bm25 + w_dense) / (rrf_k + 1)
        cfg = fake_pipeline.settings
        assert scores.fused == pytest.approx((cfg.bm25_weight + cfg.dense_weight) / (cfg.rrf_k + 1))


def test_top_k_and_ordering(fake_pipeline):
    passages = fake_pipeline.search("South Korea NATO partnership", top_k=7).passages
    assert len(passages) == 7
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_unknown_mode_and_empty_query_are_rejected(fake_pipeline):
    with pytest.raises(InvalidRequest, match="unknown retrieval mode"):
        fake_pipeline.search("NATO", mode="fuzzy")
    with pytest.raises(InvalidRequest, match="empty"):
        fake_pipeline.ask("   ")
    with pytest.raises(InvalidRequest, match="longer than"):
        fake_pipeline.ask("why " * 400)


def test_answer_with_citation_and_offsets(fake_pipeline):
    result = fake_pipeline.ask("Who was NATO's first Secretary General?")
    assert result.answers, result.no_answer
    best = result.answers[0]
    assert "Lord Hastings Lionel Ismay" in best.text
    assert best.citation.document_id == "nato-indo-pacific-pivot"
    assert best.citation.paragraph_index == 1
    assert_offsets(ask_response(result), _documents(fake_pipeline))


def test_abstains_on_a_question_the_documents_do_not_cover(fake_pipeline):
    result = fake_pipeline.ask("What is the capital of Australia?")
    assert result.answers == []
    assert result.no_answer is not None and "do not appear to answer" in result.no_answer.reason
    assert ask_response(result)["no_answer"]["threshold"] == fake_pipeline.threshold


def test_ask_batch_matches_single_asks(fake_pipeline):
    questions = ["Who was NATO's first Secretary General?", "When was the East-West Center established?"]
    batch = fake_pipeline.ask_batch(questions)
    for question, result in zip(questions, batch):
        single = fake_pipeline.ask(question)
        assert [a.text for a in result.answers] == [a.text for a in single.answers]


def test_upsert_and_delete_change_answers_without_restart(fake_pipeline):
    question = "What colour is the zorblax beacon?"
    assert fake_pipeline.ask(question).answers == []
    fake_pipeline.upsert_documents([document_from_text("Zorblax Facts\nThe zorblax beacon is colour Ultramarine Blue, say Zorblax engineers.", "zorblax")])
    answers = fake_pipeline.ask(question).answers
    assert answers and answers[0].citation.document_id == "zorblax"
    assert_offsets(ask_response(fake_pipeline.ask(question)), _documents(fake_pipeline))
    fake_pipeline.delete_document("zorblax")
    assert all(a.citation.document_id != "zorblax" for a in fake_pipeline.ask(question).answers)


def test_empty_index_abstains(tmp_path):
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    pipeline = Pipeline(Settings(index_dir=tmp_path / "i", embedding_model="hashing:64", reader="heuristic"))
    pipeline.warm_up()
    pipeline.upsert_documents([document_from_text("Only text.", "only")])
    pipeline.delete_document("only")
    result = pipeline.ask("Anything at all?")
    assert result.answers == [] and result.no_answer is not None
