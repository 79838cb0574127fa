// The built-in chat page.  It talks to POST /v1/chat/completions like any OpenAI client and
// renders the `answers` and `citations` extension fields.  Document text is only ever inserted
// as text (textContent / text nodes), never as HTML.
"use strict";

(() => {
  const STORE = "rag-chat-v1";
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const form = $("ask-form");
  const input = $("question");
  const askButton = $("ask");
  const statusLine = $("status");
  const empty = $("empty");
  let model = "rag-default";
  let turns = []; // {question, response} or {question, error}
  let busy = false;

  // --------------------------------------------------------------------------- DOM helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function setStatus(text) {
    statusLine.textContent = text;
  }

  // text[start:end] wrapped in <mark>, with the answer [aStart:aEnd] in <strong> inside it.
  function highlighted(text, start, end, aStart, aEnd) {
    const span = el("span", { class: "paragraph-text" });
    const s = Math.max(0, Math.min(start, aStart));
    const e = Math.min(text.length, Math.max(end, aEnd));
    span.appendChild(document.createTextNode(text.slice(0, s)));
    const mark = el("mark", {});
    mark.appendChild(document.createTextNode(text.slice(s, aStart)));
    mark.appendChild(el("strong", {}, text.slice(aStart, aEnd)));
    mark.appendChild(document.createTextNode(text.slice(aEnd, e)));
    span.appendChild(mark);
    span.appendChild(document.createTextNode(text.slice(e)));
    return span;
  }

  function safeHttpUrl(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  // --------------------------------------------------------------------------- rendering
  function citationId(turn, n) {
    return `cite-${turn}-${n}`;
  }

  function markerLink(turn, n) {
    const link = el("a", { class: "marker", href: `#${citationId(turn, n)}`, "aria-label": `source ${n}` }, `[${n}]`);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const details = $(citationId(turn, n));
      if (!details) return;
      details.open = true;
      details.querySelector("summary").focus();
      details.scrollIntoView({ block: "nearest" });
    });
    return link;
  }

  function citationDetails(turn, answer, citation) {
    const n = answer.marker;
    const details = el("details", { class: "citation", id: citationId(turn, n) });
    const title = citation.title || citation.document_id;
    details.appendChild(
      el("summary", {}, el("span", { class: "marker" }, `[${n}]`), ` Source paragraph ${citation.paragraph_index}`)
    );
    const body = el("div", { class: "citation-body" });
    body.appendChild(el("p", { class: "doc-title" }, title));
    const meta = [`document ${citation.document_id}`, `paragraph ${citation.paragraph_index}`];
    if (citation.section) meta.push(`section “${citation.section}”`);
    body.appendChild(el("p", { class: "doc-meta" }, meta.join(" · ")));
    const paragraph = el("p", { class: "paragraph" });
    paragraph.appendChild(
      highlighted(citation.paragraph_text, answer.context_start, answer.context_end, citation.answer_start, citation.answer_end)
    );
    body.appendChild(paragraph);
    const links = el("p", { class: "doc-links" });
    const here = safeHttpUrl(answer.url);
    if (here) links.appendChild(el("a", { href: here }, "Open the document at this paragraph"));
    const original = answer.source_url ? safeHttpUrl(answer.source_url) : null;
    if (original) {
      links.appendChild(document.createTextNode(" · "));
      links.appendChild(el("a", { href: original, rel: "noopener noreferrer" }, "Original source"));
    }
    body.appendChild(links);
    details.appendChild(body);
    return details;
  }

  function renderQuestion(turn, question, rewritten) {
    const article = el("article", { class: "turn user", "aria-label": "You asked" });
    article.appendChild(el("p", { class: "question" }, question));
    if (rewritten && rewritten.trim() !== question.trim()) {
      article.appendChild(el("p", { class: "rewritten" }, "Searched as: ", el("q", {}, rewritten)));
    }
    return article;
  }

  function renderAnswer(turn, response) {
    const answers = response.answers || [];
    const citations = response.citations || [];
    if (!citations.length) {
      const article = el("article", { class: "turn assistant abstained", "aria-label": "No answer" });
      article.appendChild(el("p", { class: "abstain-title" }, "No answer in the documents"));
      article.appendChild(el("p", {}, "The documents do not answer this question."));
      const reason = response.no_answer && response.no_answer.reason;
      if (reason) article.appendChild(el("p", { class: "detail" }, `Details: ${reason}`));
      return article;
    }
    const article = el("article", { class: "turn assistant", "aria-label": "Answer" });
    const best = answers[0];
    const first = citations[0];
    article.appendChild(
      el("p", { class: "answer" }, el("span", { class: "visually-hidden" }, "Answer: "),
        el("strong", { class: "answer-text" }, best.text), " ", markerLink(turn, 1))
    );
    const quote = el("blockquote", { class: "quote" });
    const inContext = first.answer_start - best.context_start;
    if (inContext >= 0 && best.context.slice(inContext, inContext + best.text.length) === best.text) {
      quote.appendChild(document.createTextNode(best.context.slice(0, inContext)));
      quote.appendChild(el("strong", {}, best.text));
      quote.appendChild(document.createTextNode(best.context.slice(inContext + best.text.length)));
    } else {
      quote.appendChild(document.createTextNode(best.context));
    }
    quote.appendChild(document.createTextNode(" "));
    quote.appendChild(markerLink(turn, 1));
    article.appendChild(quote);
    if (answers.length > 1) {
      const others = el("ul", { class: "others" });
      for (const other of answers.slice(1)) others.appendChild(el("li", {}, other.text, " ", markerLink(turn, other.marker)));
      article.appendChild(el("p", { class: "others-title" }, "Other possible answers:"));
      article.appendChild(others);
    }
    const sources = el("div", { class: "sources" });
    answers.forEach((answer, i) => sources.appendChild(citationDetails(turn, answer, citations[i])));
    article.appendChild(sources);
    return article;
  }

  function renderError(message) {
    return el("article", { class: "turn error", role: "alert", "aria-label": "Error" }, el("p", {}, `Could not answer: ${message}`));
  }

  function renderTurn(index, turn) {
    const group = el("div", { class: "exchange" });
    group.appendChild(renderQuestion(index, turn.question, turn.response && turn.response.rewritten_question));
    if (turn.response) group.appendChild(renderAnswer(index, turn.response));
    else if (turn.error) group.appendChild(renderError(turn.error));
    return group;
  }

  function renderAll() {
    log.replaceChildren(...turns.map((turn, i) => renderTurn(i, turn)));
    empty.hidden = turns.length > 0;
  }

  // --------------------------------------------------------------------------- state
  function save() {
    try {
      sessionStorage.setItem(STORE, JSON.stringify(turns));
    } catch (_) {
      /* storage full or disabled: the conversation still works in this page */
    }
  }

  function load() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(STORE) || "[]");
      turns = Array.isArray(stored) ? stored.filter((t) => t && typeof t.question === "string") : [];
    } catch (_) {
      turns = [];
    }
  }

  function history() {
    const messages = [];
    for (const turn of turns) {
      if (!turn.response) continue;
      messages.push({ role: "user", content: turn.question });
      messages.push({ role: "assistant", content: turn.response.content });
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

  async function ask(question) {
    busy = true;
    askButton.disabled = true;
    log.setAttribute("aria-busy", "true");
    setStatus("Searching the documents…");
    const index = turns.length;
    const pending = renderQuestion(index, question, null);
    empty.hidden = true;
    log.appendChild(pending);
    let turn;
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model, messages: [...history(), { role: "user", content: question }] }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        const message = (data.error && data.error.message) || data.detail || `HTTP ${response.status}`;
        turn = { question, error: String(message) };
      } else {
        turn = { question, response: keep(data) };
      }
    } catch (err) {
      turn = { question, error: "the service could not be reached" };
    }
    turns.push(turn);
    save();
    const group = renderTurn(index, turn);
    pending.replaceWith(group);
    group.scrollIntoView({ block: "start" });
    setStatus(turn.error ? "The question could not be answered." : turn.response.citations.length ? "Answer ready." : "No answer in the documents.");
    log.removeAttribute("aria-busy");
    askButton.disabled = false;
    busy = false;
    input.focus();
  }

  function newConversation() {
    turns = [];
    save();
    renderAll();
    setStatus("New conversation started.");
    input.value = "";
    input.focus();
  }

  // --------------------------------------------------------------------------- events
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

  fetch("/v1/models")
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => {
      if (data && data.data && data.data.length) model = data.data[0].id;
    })
    .catch(() => {});

  load();
  renderAll();
  input.focus();
})();
