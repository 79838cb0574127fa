"""Milvus connection and the two collections that hold a whole index in Milvus (issue 13).

One code path for both deployments, chosen by the URI alone:

* a file path (``index/milvus.db``) runs Milvus Lite embedded in this process (pip package
  ``milvus-lite``): tests and single-machine use; Milvus Lite allows one process per file;
* ``http://host:19530`` (with ``RAG_MILVUS_TOKEN`` for authentication) reaches a Milvus
  standalone server or a distributed cluster shared by many API replicas (docs/deploy.md).

Layout, for ``milvus_collection`` = ``rag_passages``::

    rag_passages            alias -> rag_passages_<random>, the passages collection:
                            one row per passage (primary key = passage id), its text, document
                            id, paragraph index, offsets, section/title/context, the dense
                            vector and a BM25 sparse vector made by Milvus' BM25 function.
                            Its collection properties hold the manifest and the version.
    rag_passages_<random>_records
                            documents and paragraphs (texts in <= 64 KB parts, rag/store/
                            milvus_records.py), named by the passages collection's properties.

A full rebuild (other embedding model or chunking) fills a new pair of collections and then
moves the alias in one ``alter_alias`` call: readers switch atomically.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()

# Milvus caps limit (top-k) per search at 16,384.
MAX_TOP_K = 16384
# VARCHAR max_length is counted in UTF-8 bytes and capped at 65,535; JSON fields are capped at
# 65,536 bytes on a cluster (Milvus Lite accepts more, a cluster refuses), so every long text is
# stored as VARCHAR parts of at most this many bytes.
MAX_VARCHAR = 65_535
# Document ids, keys and paths: the API caps document_id at 200 characters (<= 800 bytes).
MAX_KEY = 2048
# Rows per insert/upsert call: 1000 passages of 384-dim vectors and ~1 KB texts are ~3 MB, well
# under Milvus' 64 MB gRPC message limit.
WRITE_BATCH = 1000
# Row kinds of the records collection.
HEAD, TEXT, PARAGRAPH = "head", "text", "para"
# Collection-property keys: the manifest JSON and the version marker replicas poll.
PROP_MANIFEST = "rag.manifest"
PROP_VERSION = "rag.version"
PROP_RECORDS = "rag.records"
RECORDS_SUFFIX = "_records"
# The layout of the Milvus index (its manifest's format_version); independent of the index
# folder's format (rag/store/corpus_index.py).  2: head rows list their rows' primary keys;
# 3: passages carry their paragraph's part count (reads by primary key only); 4: BM25 statistics
# of the whole index (df rows, the manifest's lexical_tokens; rag/store/milvus_lexical.py).
# A writer finding another format rebuilds (re-embeds) into new collections.
FORMAT_VERSION = 4
# Milvus' own BM25 only proposes candidates (rag/store/milvus_lexical.py re-scores them); its
# parameters are the embedded path's all the same (rag/store/lexical.py: k1=1.5, b=0.75).
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}


def is_local(uri: str) -> bool:
    """A path (Milvus Lite) rather than a server address."""
    return "://" not in uri


def normalize_uri(uri: str) -> str:
    return str(Path(uri).expanduser().resolve()) if is_local(uri) else uri


def public_uri(uri: str) -> str:
    """The URI without user:password, for the manifest and logs."""
    if is_local(uri):
        return uri
    parts = urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def get_client(uri: str, token: str = ""):
    """One MilvusClient per (URI, token) per process: Milvus Lite allows one opener per file,
    and every Pipeline of this process on that URI shares it."""
    from pymilvus import MilvusClient

    uri = normalize_uri(uri)
    key = (uri, token)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if is_local(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            client = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
            _clients[key] = client
        return client


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression (Milvus Lite has no filter templates).
    Only \\ and \" are escaped: Milvus' parser refuses \\uXXXX, so writers refuse control
    characters in document ids (rag/store/milvus_writer.py)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def keys_filter(keys) -> str:
    """``key in [...]`` for the records collection.  Its string keys never go through
    MilvusClient.get/delete(ids=...): pymilvus 3.0 quotes them without escaping a backslash, and
    Milvus refuses the expression (an id like ``a\\b`` failed)."""
    return f"key in [{', '.join(quote(k) for k in keys)}]"


def clip(text: str, limit: int = MAX_VARCHAR) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def split_bytes(text: str, limit: int = MAX_VARCHAR) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-8 bytes, cut on character boundaries."""
    parts, data = [], text.encode("utf-8")
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # not inside a multi-byte character
            cut -= 1
        parts.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return parts or [""]


def records_name(passages_name: str) -> str:
    return passages_name + RECORDS_SUFFIX


def passages_schema(client, dimension: int, index_type: str):
    """(schema, index params) of a passages collection."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("document_id", DataType.VARCHAR, max_length=MAX_KEY)
    schema.add_field("gen", DataType.VARCHAR, max_length=64)  # the document version (content hash) it belongs to
    schema.add_field("paragraph_index", DataType.INT64)
    schema.add_field("paragraph_parts", DataType.INT64)  # its paragraph's record parts: fetched by key, not by a filter
    schema.add_field("paragraph_start", DataType.INT64)
    schema.add_field("doc_start", DataType.INT64)
    schema.add_field("length", DataType.INT64)  # characters; the exact text is paragraph.text[start:start+length]
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    for name in ("section", "title", "context"):
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_VARCHAR)
    # The BM25 input: the embedded path's tokens (bm25s tokenizer, English stop words, Snowball
    # stemmer) joined by spaces, so Milvus' standard analyzer sees the same terms on Milvus Lite
    # (which ignores analyzer filters: measured, "cats" and "cat" stayed two terms) and on a cluster.
    schema.add_field("lexical", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["lexical"],
                                 output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type=index_type, metric_type="IP")
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
    index.add_index(field_name="document_id", index_type="INVERTED")
    return schema, index


def records_schema(client):
    """(schema, index params) of a records collection: document heads, text and paragraph parts,
    and one row per term with its document frequency (rag/store/milvus_lexical.py)."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=MAX_KEY)
    schema.add_field("kind", DataType.VARCHAR, max_length=8)
    schema.add_field("document_id", DataType.VARCHAR, max_length=MAX_KEY)
    schema.add_field("gen", DataType.VARCHAR, max_length=64)
    schema.add_field("grp", DataType.VARCHAR, max_length=MAX_KEY)  # the item a part belongs to
    schema.add_field("part", DataType.INT64)
    schema.add_field("origin", DataType.VARCHAR, max_length=16)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=128)
    schema.add_field("source_path", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("passages", DataType.INT64)  # a head's passages; a df row's document frequency
    schema.add_field("characters", DataType.INT64)
    schema.add_field("parts", DataType.INT64)
    schema.add_field("data", DataType.VARCHAR, max_length=MAX_VARCHAR)
    # A head's passage ids and paragraph part counts (JSON), so that replacing or deleting the
    # document deletes its rows by primary key; "" when longer than a VARCHAR holds (~3,000
    # passages), and the writer then finds the rows by document id instead.
    schema.add_field("members", DataType.VARCHAR, max_length=MAX_VARCHAR)
    # Milvus needs a vector field in every collection; this one earns its place: a head row
    # holds [characters, 0], so an inner-product search with [1, 0] returns the largest
    # documents (the web page's example questions) without scanning them out of Milvus.
    schema.add_field("size", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index(field_name="size", index_type="FLAT", metric_type="IP")
    index.add_index(field_name="document_id", index_type="INVERTED")
    index.add_index(field_name="grp", index_type="INVERTED")
    index.add_index(field_name="kind", index_type="INVERTED")
    return schema, index
