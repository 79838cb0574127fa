"""The technical-document training set: questions from structure, subject swaps, whole-document splits, buckets."""
from __future__ import annotations

import json
import random

from rag.training.checkpoint import batches_from, epoch_order
from rag.training.data import split_heldout
from rag.training.techdocs import document_questions, load_techdocs, subject_swaps
from rag.training.techdocs_questions import clause, paragraph_questions, third_person

CUT_OPTIONS = "-b, --bytes=LIST\nselect only these bytes"
PG_PARAGRAPH = ("Sets the amount of memory the database server uses for shared memory buffers. The default is typically "
                "128 megabytes (128MB), but might be less if your kernel settings will not support it.")
TABLE = "Name | Storage Size | Range\nsmallint | 2 bytes | -32768 to +32767\ninteger | 4 bytes | -2147483648 to +2147483647\nbigint | 8 bytes | huge"


def _by_kind(questions):
    out = {}
    for q in questions:
        out.setdefault(q.kind, []).append(q)
    return out


def _check_offsets(text, questions):
    for q in questions:
        assert text[q.answer_start:q.answer_start + len(q.answer_text)] == q.answer_text


def test_an_option_paragraph_asks_for_the_option_and_for_what_it_does():
    found = _by_kind(q for seed in range(20) for q in paragraph_questions(CUT_OPTIONS, "DESCRIPTION", "", "cut", random.Random(seed)))
    assert {q.answer_text for q in found["option"]} == {"-b", "--bytes=LIST"}
    assert {q.answer_text for q in found["option_desc"]} == {"select only these bytes"}
    # The question names the option, never copies the answer's words in the text's order only.
    assert all("-b" in q.question for q in found["option_desc"])
    assert all("selects only these bytes" in q.question or "select only these bytes" in q.question for q in found["option"])


def test_a_default_belongs_to_the_term_before_it():
    qs = paragraph_questions(PG_PARAGRAPH, "20.4.1. Memory", "shared_buffers (integer)", "", random.Random(0))
    defaults = [q for q in qs if q.kind == "default"]
    assert defaults and defaults[0].subject == "shared_buffers"
    assert defaults[0].answer_text == "128 megabytes (128MB)"
    assert "shared_buffers" in defaults[0].question
    _check_offsets(PG_PARAGRAPH, qs)
    inline = "--timeout=SECONDS\nwait this long for a reply (default: 10 seconds)"
    qs = paragraph_questions(inline, "OPTIONS", "", "tool", random.Random(1))
    assert [(q.subject, q.answer_text) for q in qs if q.kind == "default"] == [("--timeout", "10 seconds")]
    _check_offsets(inline, qs)


def test_a_table_cell_is_asked_by_its_row_and_column():
    qs = [q for seed in range(10) for q in paragraph_questions(TABLE, "", "", "", random.Random(seed)) if q.kind == "table"]
    assert qs
    _check_offsets(TABLE, qs)
    for q in qs:
        assert q.subject in q.question and q.subject in ("smallint", "integer", "bigint")
        row = next(line for line in TABLE.split("\n") if line.startswith(q.subject + " "))
        assert q.answer_text in row.split(" | ")[1:]


def test_definitions_name_lines_and_faq():
    qs = paragraph_questions("rsync - a fast, versatile, remote (and local) file-copying tool", "NAME", "", "rsync", random.Random(0))
    assert [(q.kind, q.answer_text) for q in qs] == [("name", "a fast, versatile, remote (and local) file-copying tool")]
    text = "Zstandard is a fast lossless compression algorithm, which targets real-time scenarios. If the class found is a leaf."
    qs = paragraph_questions(text, "", "", "", random.Random(0))
    assert [(q.kind, q.answer_text) for q in qs] == [("definition", "a fast lossless compression algorithm")]
    faq = "Yes. But see below."
    assert not paragraph_questions(faq, "FAQ > 3. Can I use it in a commercial product?", "", "", random.Random(0))
    ans = "Use the deflateBound() function to find the maximum size. More follows."
    qs = paragraph_questions(ans, "FAQ > 4. How can I know how big the output will be?", "", "", random.Random(0))
    assert [q.answer_text for q in qs if q.kind == "faq"] == ["Use the deflateBound() function to find the maximum size."]


def test_wording_helpers():
    assert third_person("select only these bytes") == "selects only these bytes"
    assert third_person("display this help") == "displays this help"
    assert third_person("do a dry-run") == "does a dry-run"
    assert third_person("copy files") == "copies files"
    assert clause("use STRING as the output delimiter; the default is the input delimiter") == "use STRING as the output delimiter"


def test_documents_are_capped_and_eval_paragraphs_are_dropped():
    paragraphs = [(f"--opt{i}=N\nset the number of widgets to N (default: {i})", "OPTIONS", "list_item") for i in range(40)]
    excluded = {__import__("rag.training.techdocs", fromlist=["_paragraph_key"])._paragraph_key(paragraphs[0][0])}
    rows, dropped = document_questions("man/x.txt", "x - widgets", paragraphs, "man", excluded, random.Random(0))
    assert dropped == 1 and 0 < len(rows) <= 24
    assert not any(r["context"] == paragraphs[0][0] for r in rows)
    for r in rows:
        assert r["context"][r["answer_start"]:r["answer_start"] + len(r["answer_text"])] == r["answer_text"]


def test_subject_swaps_ask_about_what_the_paragraph_lacks(tmp_path):
    rows = [{"question": "What is the default shared_buffers?", "context": PG_PARAGRAPH.replace("Sets", "shared_buffers sets"),
             "answer_start": 5, "answer_text": "x", "kind": "default", "subject": "shared_buffers"}]
    pools = {"default": ["shared_buffers", "temp_buffers", "work_mem"]}
    swaps = subject_swaps(rows, pools, random.Random(0), share=1.0)
    assert len(swaps) == 1 and swaps[0]["answer_start"] == -1 and swaps[0]["kind"] == "swap_default"
    assert "shared_buffers" not in swaps[0]["question"] and swaps[0]["question"].split()[-1].rstrip("?") in ("temp_buffers", "work_mem")
    # Whole documents go to one side of the split, their negatives with them.
    path = tmp_path / "q.jsonl"
    with path.open("w") as fh:
        for d in range(30):
            fh.write(json.dumps({"file": f"man/d{d}.txt", "package": "p", "title": "t", "rows": [
                {**rows[0], "question": f"q{d}-{k}", "answer_start": 0, "answer_text": "shared_buffers"} for k in range(3)] + swaps}) + "\n")
    articles, negatives = load_techdocs(path)
    assert len(articles) == 30 and len(negatives) == 30 and all(not n.golds for n in negatives)
    train, held = split_heldout(articles, 0.3, 13)
    assert held and {ex.group for a in train for ex in a}.isdisjoint({ex.group for a in held for ex in a})
    assert all(len(a) == 3 for a in held)


def test_heldout_documents_are_asked_in_wordings_no_training_question_uses(tmp_path):
    qs = [q for seed in range(40) for q in paragraph_questions(CUT_OPTIONS, "DESCRIPTION", "", "cut", random.Random(seed))]
    qs += [q for seed in range(40) for q in paragraph_questions(PG_PARAGRAPH, "20.4.1. Memory", "shared_buffers (integer)", "",
                                                                 random.Random(seed))]
    assert qs and all(q.question_unseen for q in qs)
    # Template shapes: the question with its subject (and answer-side slots) blanked out.
    def shape(q, text):
        return text.replace(q.subject, "S").lower()
    seen = {shape(q, q.question) for q in qs}
    assert not seen & {shape(q, q.question_unseen) for q in qs}
    rows = [{"question": "What is the default shared_buffers?", "question_unseen": "What does shared_buffers default to?",
             "context": "shared_buffers: the default is 128MB.", "answer_start": 29, "answer_text": "128MB", "kind": "default",
             "subject": "shared_buffers"}]
    swaps = subject_swaps(rows, {"default": ["shared_buffers", "work_mem"]}, random.Random(0), share=1.0)
    assert swaps[0]["question_unseen"] == "What does work_mem default to?"
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"file": f"man/d{d}.txt", "package": "p", "title": "t", "rows": rows + swaps}) + "\n"
                            for d in range(20)))
    articles, negatives = load_techdocs(path, unseen=lambda g: g.endswith(("d3.txt", "d7.txt")))
    asked = {a[0].group: a[0].question for a in articles}
    assert asked["tech/man/d3.txt"] == "What does shared_buffers default to?"
    assert asked["tech/man/d4.txt"] == "What is the default shared_buffers?"
    assert {n.question for n in negatives if n.group == "tech/man/d7.txt"} == {"What does work_mem default to?"}


def test_length_buckets_keep_every_window_once_and_replay():
    lengths = [random.Random(i).randint(20, 256) for i in range(400)]
    batches = epoch_order(400, 8, 3, 0, lengths)
    rows = [i for b in batches for i in b]
    assert len(rows) == len(set(rows)) == 400
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    plain = epoch_order(400, 8, 3, 0)
    assert spread < 0.3 * sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain) / len(plain)
    straight = [rows for _, (_s, rows) in zip(range(70), batches_from(400, 8, 3, 0, lengths))]
    resumed = [rows for _, (_s, rows) in zip(range(10), batches_from(400, 8, 3, 60, lengths))]
    assert straight[60:70] == resumed


def test_no_evaluation_document_was_trained_on():
    """The technical training documents of the issue-19 run (eval/reader/techdocs_training_documents.tsv) come from no
    package that eval/realdocs draws a file from, and the collector excludes all of them."""
    import re
    from pathlib import Path

    from rag.training.techdocs_collect import EXCLUDED_PACKAGES

    root = Path(__file__).resolve().parent.parent
    sources = (root / "eval/realdocs/SOURCES.md").read_text()
    eval_packages = set()
    for row in sources.splitlines():
        m = re.search(r"\|\s*(Debian|PyPI) `([^`]+)`", row)
        if m:
            eval_packages.add(m.group(2) if m.group(1) == "Debian" else m.group(2))
    assert len(eval_packages) >= 9
    assert eval_packages <= EXCLUDED_PACKAGES
    listed = (root / "eval/reader/techdocs_training_documents.tsv").read_text().splitlines()
    trained = {line.split("\t")[1].removeprefix("pypi:") for line in listed[3:] if line.strip()}
    assert len(trained) > 200
    assert not trained & eval_packages
    # PyPI READMEs are matched by their distribution name, however it is spelt.
    from rag.training.techdocs_collect import is_excluded

    assert is_excluded("pypi:charset_normalizer") and is_excluded("pypi:pdfplumber") and is_excluded("pypi:rag-extractive-qa")
    assert is_excluded("texlive-publishers-doc/doc") and not is_excluded("pypi:requests") and not is_excluded("coreutils")
