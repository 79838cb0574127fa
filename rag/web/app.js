// The workspace page: asks through POST /v1/chat/completions like any OpenAI client and renders
// the `answers` and `citations` extension fields; conversations live in localStorage (store.js),
// documents in the side panel (library.js).
"use strict";

import { Library, authHeaders } from "./library.js";
import { abstentionMessage, el, renderAnswer, renderError, renderQuestion } from "./render.js";
import { Conversations } from "./store.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
const form = $("ask-form");
const input = $("question");
const askButton = $("ask");
const empty = $("empty");
const conversations = new Conversations();
// Passages shown under an abstention ("related passages").
const RELATED_PASSAGES = 3;
let model = "rag-default";
let busy = false;

function setStatus(text) {
  $("status").textContent = text;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    setStatus("Answer and citation copied.");
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy answer with citation"), 2000);
  } catch (_) {
    setStatus("Copying is not allowed here; select the text instead.");
  }
}

function renderTurn(index, turn) {
  const group = el("div", { class: "exchange" });
  group.appendChild(renderQuestion(turn.question, turn.response && turn.response.rewritten_question));
  if (turn.response) group.appendChild(renderAnswer(index, turn.response, copy));
  else if (turn.error) group.appendChild(renderError(turn.error));
  return group;
}

function renderConversationList() {
  const list = $("conversations");
  if (!conversations.all.length) {
    list.replaceChildren(el("li", { class: "none" }, "Your questions will be listed here."));
    return;
  }
  list.replaceChildren(...conversations.all.map((c) => {
    const current = c.id === conversations.currentId;
    const button = el("button", { type: "button", class: "conversation", "aria-current": current ? "true" : "false" }, c.title);
    button.addEventListener("click", () => {
      conversations.select(c.id);
      renderAll();
      setStatus(`Opened “${c.title}”.`);
      input.focus();
    });
    return el("li", {}, button);
  }));
}

function renderAll() {
  const turns = conversations.turns;
  log.replaceChildren(...turns.map((turn, i) => renderTurn(i, turn)));
  empty.hidden = turns.length > 0;
  renderConversationList();
}

function history() {
  const messages = [];
  for (const turn of conversations.turns) {
    if (!turn.response) continue;
    messages.push({ role: "user", content: turn.question }, { role: "assistant", content: turn.response.content });
  }
  return messages;
}

function keep(data) {
  const message = (data.choices && data.choices[0] && data.choices[0].message) || {};
  return {
    content: message.content || "",
    rewritten_question: data.rewritten_question,
    citations: data.citations || [],
    answers: data.answers || [],
    no_answer: data.no_answer || null,
  };
}

async function related(question) {
  try {
    const response = await fetch("/v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ query: question, top_k: RELATED_PASSAGES }),
    });
    return response.ok ? (await response.json()).passages || [] : [];
  } catch (_) {
    return [];
  }
}

async function ask(question) {
  busy = true;
  askButton.disabled = true;
  log.setAttribute("aria-busy", "true");
  setStatus("Searching the documents…");
  const index = conversations.turns.length;
  const pending = renderQuestion(question, null);
  empty.hidden = true;
  log.appendChild(pending);
  let turn;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ model, messages: [...history(), { role: "user", content: question }] }),
    });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) library.askForKey("Questions need an API key on this service: enter it in the Documents panel.");
    if (!response.ok) {
      turn = { question, error: String((data.error && data.error.message) || data.detail || `HTTP ${response.status}`) };
    } else {
      turn = { question, response: keep(data) };
      if (!turn.response.citations.length) turn.response.related = await related(data.rewritten_question || question);
    }
  } catch (_) {
    turn = { question, error: "the service could not be reached" };
  }
  conversations.addTurn(turn);
  const group = renderTurn(index, turn);
  pending.replaceWith(group);
  renderConversationList();
  group.scrollIntoView({ block: "start" });
  setStatus(turn.error ? "The question could not be answered." : turn.response.citations.length ? "Answer ready." : abstentionMessage(turn.response));
  log.removeAttribute("aria-busy");
  askButton.disabled = false;
  busy = false;
  input.focus();
}

function askExample(question) {
  if (busy) return;
  input.value = "";
  ask(question);
}

function newConversation() {
  conversations.startNew();
  renderAll();
  setStatus("New conversation started.");
  input.value = "";
  input.focus();
}

// ----------------------------------------------------------------------------- events
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (busy) return;
  if (!question) {
    setStatus("Type a question first.");
    input.focus();
    return;
  }
  input.value = "";
  input.style.height = "";
  ask(question);
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

input.addEventListener("input", () => {
  input.style.height = "";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
});

$("new-chat").addEventListener("click", newConversation);

// On a phone the side panel is folded away behind this button.
$("panel-toggle").addEventListener("click", () => {
  const open = $("panel-toggle").getAttribute("aria-expanded") !== "true";
  $("panel-toggle").setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("panel-open", open);
  if (open) $("conversations-title").scrollIntoView({ block: "start" });
});

fetch("/v1/models", { headers: authHeaders() })
  .then((r) => (r.ok ? r.json() : null))
  .then((data) => {
    if (data && data.data && data.data.length) model = data.data[0].id;
  })
  .catch(() => {});

const library = new Library({ onExample: askExample, onChange: () => {} });
library.refresh();
renderAll();
input.focus();
