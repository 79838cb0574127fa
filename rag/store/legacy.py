"""Format 2 indexes (one folder per version, JSONL texts, ``CURRENT``): read once to upgrade.

``rag index`` on such a folder re-stores its documents in format 3 (re-embedding them: the
old vectors came from a whole-corpus matrix whose rows no longer map to passage ids) and then
removes the old version folders.  Any other command refuses the folder with a message that
says to run ``rag index`` (rag/store/corpus_index.py).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from rag.store.corpus_index import LEGACY_CURRENT_FILE, StoredDocument
from rag.types import Document

LEGACY_PREFIXES = ("v-", ".tmp-v-")


def legacy_documents(index_dir: Path) -> list[StoredDocument]:
    folder = Path(index_dir) / (Path(index_dir) / LEGACY_CURRENT_FILE).read_text().strip()
    documents = []
    with (folder / "documents.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                origin = row.pop("origin", "file")
                documents.append(StoredDocument(Document.from_row(row), origin))
    return documents


def remove_legacy(index_dir: Path) -> None:
    """Drop format 2's files once format 3 has committed (CURRENT last: until then a crashed
    upgrade is simply run again)."""
    for path in Path(index_dir).iterdir():
        if path.is_dir() and path.name.startswith(LEGACY_PREFIXES):
            shutil.rmtree(path, ignore_errors=True)
    for stale in Path(index_dir).glob(f".{LEGACY_CURRENT_FILE}.*.tmp"):
        stale.unlink(missing_ok=True)
    (Path(index_dir) / LEGACY_CURRENT_FILE).unlink(missing_ok=True)
