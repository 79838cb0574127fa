"""What particular chat front ends need beyond the OpenAI shape (docs/chat-clients.md).

No HTTP here; ``rag.api.routes_chat`` uses these.

Background task prompts (:func:`task_prompt`)
---------------------------------------------
Open WebUI asks the chat model for a title, tags and follow-up suggestions after each first
answer (and, when enabled, for search queries and autocompletion), with a prompt built from a
template such as::

    ### Task:
    Generate a concise, 3-5 word title with an emoji summarizing the chat history.
    ...
    ### Output:
    JSON format: { "title": "your concise title here" }
    ...
    ### Chat History:
    <chat_history>
    USER: Who was NATO's first Secretary General?
    ASSISTANT: Lord Hastings Lionel Ismay [1] ...
    </chat_history>

An extractive service cannot do these, and asked as questions they are longer than
``RAG_MAX_QUESTION_CHARS`` (a 400 that Open WebUI logs three times per conversation).  A latest
user message that starts with ``### Task:`` and holds a ``<chat_history>`` block is recognised as
such a task: it is answered, without retrieval, with the JSON object the template asks for
(the first ``{ "key": ...`` before the chat history) holding an empty value (``{"tags": []}``,
``{"follow_ups": []}``, ``{"queries": []}``, ``{"text": ""}``), except the title, which is the
first user message of the history cut to :data:`TITLE_CHARS` characters.  A task whose template
names no key gets an empty reply.  Either way the reply says which task it took the message for.

Open WebUI's sources (:func:`open_webui_sources`)
-------------------------------------------------
Open WebUI shows a message's sources in a pop-up per ``[n]`` chip, from objects of the shape
its retrieval produces: ``{"source": {id, name, url}, "document": [text], "metadata": [{source,
name, source_url}]}``, grouped by ``metadata.source``.  The url_citation annotations alone give
it one entry per marker, named by the URL, whose text is the document title.  These objects give
one entry per marker ``[n]`` (``citations[n-1]``) named "<title>, [p. N, ]paragraph i", whose
text is the cited paragraph (Markdown-safe, see ``rag.chat.markdown_safe``) and whose link is
the paragraph's URL (``source_url``, so Open WebUI fetches no favicon for it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rag.chat import ChatAnswer, markdown_safe, page_label

TASK_START = "### Task:"
HISTORY_OPEN, HISTORY_CLOSE = "<chat_history>", "</chat_history>"
# A title longer than this is cut at a word boundary.
TITLE_CHARS = 60
# The JSON object a task template asks for: its first key, and whether its value is a list.
_JSON_KEY = re.compile(r'\{\s*"([A-Za-z_]{1,40})"\s*:\s*([\["])')
# What Open WebUI calls each task (routers/tasks.py), by the key its template asks for.
TASK_NAMES = {
    "title": "title_generation",
    "tags": "tags_generation",
    "follow_ups": "follow_up_generation",
    "queries": "query_generation",
    "text": "autocomplete_generation",
    "prompt": "image_prompt_generation",
}


@dataclass(frozen=True)
class TaskReply:
    """The reply to a background task prompt: ``content`` is what the template asks for."""

    task: str  # Open WebUI's name for the task ("title_generation", ...), or "unknown"
    key: str | None  # the JSON key the template asks for, None when it names none
    content: str

    def info(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "key": self.key,
            "reason": "a chat front end's background task (title, tags, follow-up suggestions, ...), "
            "not a question: answered without searching the documents",
        }


def task_prompt(message: str) -> TaskReply | None:
    """The reply to ``message`` when it is a front end's task prompt (module docstring), else None."""
    text = message.lstrip()
    if not text.startswith(TASK_START):
        return None
    opening = text.find(HISTORY_OPEN)
    closing = text.find(HISTORY_CLOSE, opening + 1)
    if opening < 0 or closing < 0:
        return None
    match = _JSON_KEY.search(text, 0, opening)
    if match is None:
        return TaskReply("unknown", None, "")
    key = match.group(1)
    value: str | list[str] = [] if match.group(2) == "[" else ""
    if key == "title":
        value = _title(text[opening + len(HISTORY_OPEN) : closing])
    return TaskReply(TASK_NAMES.get(key, "unknown"), key, json.dumps({key: value}, ensure_ascii=False))


def _title(history: str) -> str:
    """The first user message of an Open WebUI chat history ("USER: ..." lines), cut short."""
    for line in history.splitlines():
        if line.startswith("USER:"):
            words = line.removeprefix("USER:").split()
            title = ""
            for word in words:
                if len(title) + len(word) + 1 > TITLE_CHARS:
                    return title + "…" if title else word[:TITLE_CHARS]
                title = f"{title} {word}" if title else word
            return title
    return ""


def open_webui_sources(answer: ChatAnswer) -> list[dict[str, Any]]:
    """One Open WebUI source object per marker ``[n]`` of ``answer`` (module docstring)."""
    sources = []
    for n, (citation, detail) in enumerate(zip(answer.citations, answer.answers, strict=True), start=1):
        name = f"{citation['title'] or citation['document_id']}, {page_label(citation['pages'])}paragraph {citation['paragraph_index']}"
        key = f"[{n}] {citation['document_id']}#p{citation['paragraph_index']}"
        metadata: dict[str, Any] = {"source": key, "name": name, "source_url": detail["url"]}
        if citation["pages"]:
            metadata["page"] = citation["pages"][0] - 1  # Open WebUI counts pages from 0
        sources.append({
            "source": {"id": key, "name": name, "url": detail["url"]},
            "document": [markdown_safe(citation["paragraph_text"])],
            "metadata": [metadata],
        })
    return sources
