"""Rows of the Milvus index (rag/store/milvus_store.py) to and from the package's types.

Records collection, per document (``gen`` = the first 16 hex digits of its content hash, so
rows of a replaced document and of its replacement never share a key):

    head   key h|<doc>              document metadata (no text), origin, hash, counts, ``gen``
    text   key t|<doc>|<gen>|<i>    part i of Document.to_row() as JSON (text and blocks)
    para   key p|<doc>|<gen>|<n>|<i>  part i of paragraph n as JSON; grp = p|<doc>|<gen>|<n>

The head is written last on an upload and deleted first on a delete: it is the commit point of
a document for document reads; text and paragraph parts are looked up through it (or through a
passage's ``gen``), so a reader never pairs one version's text with another's paragraphs.

Passage ids are a 53-bit hash of (document id, gen, ordinal): writers in several replicas need
no shared counter, an unchanged document keeps its ids, and JSON clients (browsers) read the ids
exactly (2^53).  Collisions are checked on write (rag/store/milvus_writer.py): at 10^6
passages the chance of any is ~5*10^-5.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from rag.store.milvus_store import HEAD, MAX_VARCHAR, PARAGRAPH, TEXT, clip, split_bytes
from rag.store.protocol import StoredDocument
from rag.types import Document, Paragraph, Passage

SEP = "|"  # keys are unique even when ids contain it: gen and the numbers after the id have fixed shapes
ID_BITS = 53


def gen_of(document: Document) -> str:
    return (document.content_hash or hashlib.sha256(document.text.encode("utf-8")).hexdigest())[:16]


def head_key(document_id: str) -> str:
    return f"h{SEP}{document_id}"


def paragraph_group(document_id: str, gen: str, paragraph_index: int) -> str:
    return f"p{SEP}{document_id}{SEP}{gen}{SEP}{paragraph_index}"


def passage_id(document_id: str, gen: str, ordinal: int, salt: int = 0) -> int:
    digest = hashlib.blake2b(f"{document_id}{SEP}{gen}{SEP}{ordinal}{SEP}{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - ID_BITS)


def _row(kind: str, key: str, document_id: str, gen: str, grp: str = "", part: int = 0, parts: int = 1, data: str = "",
         **head: Any) -> dict[str, Any]:
    return {"key": key, "kind": kind, "document_id": document_id, "gen": gen, "grp": grp, "part": part, "parts": parts,
            "data": data, "origin": head.get("origin", ""), "content_hash": head.get("content_hash", ""),
            "source_path": clip(head.get("source_path", "")), "passages": head.get("passages", 0),
            "characters": head.get("characters", 0), "size": [float(head.get("characters", 0)), 0.0]}


def document_rows(stored: StoredDocument, paragraphs: list[Paragraph], passage_ids: list[int]) -> tuple[dict, list[dict], dict[int, int]]:
    """(head row, text and paragraph part rows, {paragraph index: its parts}) of one document."""
    document = stored.document
    gen = gen_of(document)
    doc_id = document.document_id
    parts = []
    text = split_bytes(json.dumps(document.to_row(), ensure_ascii=False))
    for i, data in enumerate(text):
        parts.append(_row(TEXT, f"t{SEP}{doc_id}{SEP}{gen}{SEP}{i}", doc_id, gen, f"t{SEP}{doc_id}{SEP}{gen}", i, len(text), data))
    layout = []
    for paragraph in paragraphs:
        group = paragraph_group(doc_id, gen, paragraph.paragraph_index)
        chunks = split_bytes(json.dumps(asdict(paragraph), ensure_ascii=False))
        parts.extend(_row(PARAGRAPH, f"{group}{SEP}{i}", doc_id, gen, group, i, len(chunks), data) for i, data in enumerate(chunks))
        layout.append([paragraph.paragraph_index, len(chunks)])
    metadata = json.dumps(document.metadata(), ensure_ascii=False)
    head = _row(HEAD, head_key(doc_id), doc_id, gen, "", 0, len(text), clip(metadata), origin=stored.origin,
                content_hash=document.content_hash, source_path=document.source_path, passages=len(passage_ids),
                characters=len(document.text))
    members = json.dumps({"ids": passage_ids, "paragraphs": layout}, separators=(",", ":"))
    head["members"] = members if len(members) <= MAX_VARCHAR else ""
    for row in parts:
        row["members"] = ""
    return head, parts, {index: count for index, count in layout}


def members_of(head: dict[str, Any]) -> tuple[list[int], list[str], list[str]] | None:
    """(passage ids, text part keys, paragraph part keys) of a head's version; None when the
    head could not list them (a very large document)."""
    if not head.get("members"):
        return None
    members = json.loads(head["members"])
    doc_id, gen = head["document_id"], head["gen"]
    text = [f"t{SEP}{doc_id}{SEP}{gen}{SEP}{i}" for i in range(int(head["parts"]))]
    paragraphs = [key for n, count in members["paragraphs"] for key in paragraph_keys(doc_id, gen, n, count)]
    return [int(i) for i in members["ids"]], text, paragraphs


def paragraph_keys(document_id: str, gen: str, paragraph_index: int, parts: int) -> list[str]:
    group = paragraph_group(document_id, gen, paragraph_index)
    return [f"{group}{SEP}{i}" for i in range(parts)]


def passage_row(passage: Passage, gen: str, lexical: str, vector, paragraph_parts: int) -> dict[str, Any]:
    return {"id": passage.passage_id, "document_id": passage.document_id, "gen": gen, "paragraph_index": passage.paragraph_index,
            "paragraph_parts": paragraph_parts,
            "paragraph_start": passage.paragraph_start, "doc_start": passage.doc_start, "length": len(passage.text),
            "text": clip(passage.text), "section": clip(passage.section), "title": clip(passage.title),
            "context": clip(passage.context), "lexical": clip(lexical), "vector": vector}


PASSAGE_FIELDS = ["id", "document_id", "gen", "paragraph_index", "paragraph_parts", "paragraph_start", "doc_start", "length", "section", "title", "context"]


def passage_from(row: dict[str, Any], paragraph: Paragraph) -> Passage:
    """The passage of a row; its text is cut from its paragraph (the stored ``text`` field is
    clipped at 64 KB, the paragraph is stored whole)."""
    start = int(row["paragraph_start"])
    return Passage(passage_id=int(row["id"]), document_id=row["document_id"], paragraph_index=int(row["paragraph_index"]),
                   text=paragraph.text[start : start + int(row["length"])], paragraph_start=start, doc_start=int(row["doc_start"]),
                   section=row["section"], title=row["title"], context=row["context"])


def joined(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{grp: the item's JSON} from part rows (complete items only: a part missing means the
    item is being rewritten or removed, and it is left out)."""
    parts: dict[str, dict[int, str]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        parts.setdefault(row["grp"], {})[int(row["part"])] = row["data"]
        counts[row["grp"]] = int(row["parts"])
    return {grp: "".join(found[i] for i in range(counts[grp])) for grp, found in parts.items() if len(found) == counts[grp]}


def paragraph_from(data: str) -> Paragraph:
    return Paragraph(**json.loads(data))


def info_from(head: dict[str, Any]) -> dict[str, Any]:
    """A head row as CorpusIndex.document_infos() gives it: metadata, origin, counts."""
    return {**json.loads(head["data"]), "origin": head["origin"], "passages": int(head["passages"]), "characters": int(head["characters"])}


HEAD_FIELDS = ["key", "document_id", "gen", "origin", "content_hash", "source_path", "passages", "characters", "parts", "data"]
WRITER_HEAD_FIELDS = [*HEAD_FIELDS, "members"]  # also what a document read needs: its rows' keys
PART_FIELDS = ["grp", "part", "parts", "data"]
