// Rendering of questions, answers, source cards and abstentions.  Document text is only ever
// inserted as text (textContent / text nodes), never as HTML.
"use strict";

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function safeHttpUrl(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

// text[start:end] wrapped in <mark>, with the answer [aStart:aEnd] in <strong> inside it.
function highlighted(text, start, end, aStart, aEnd) {
  const span = el("span", { class: "paragraph-text" });
  const s = Math.max(0, Math.min(start, aStart));
  const e = Math.min(text.length, Math.max(end, aEnd));
  span.append(text.slice(0, s));
  span.appendChild(el("mark", {}, text.slice(s, aStart), el("strong", {}, text.slice(aStart, aEnd)), text.slice(aEnd, e)));
  span.append(text.slice(e));
  return span;
}

export function pagesLabel(pages) {
  if (!Array.isArray(pages) || !pages.length) return "";
  return pages.length === 1 ? `p. ${pages[0]}` : `pp. ${pages[0]}–${pages[pages.length - 1]}`;
}

function lastSection(section) {
  return section ? section.split(" > ").pop() : "";
}

// The document view at the cited paragraph, with the quote and the answer marked there too.
export function documentLink(citation, answer) {
  const id = encodeURIComponent(citation.document_id);
  const p = citation.paragraph_index;
  let query = `?p=${p}`;
  if (answer) query += `&quote=${answer.context_start}-${answer.context_end}&answer=${citation.answer_start}-${citation.answer_end}`;
  return `/documents/${id}${query}#p${p}`;
}

function sourceMeta(citation) {
  return [lastSection(citation.section), pagesLabel(citation.pages), `paragraph ${citation.paragraph_index}`].filter(Boolean).join(" · ");
}

export function citationId(turn, n) {
  return `cite-${turn}-${n}`;
}

function markerLink(turn, n) {
  const link = el("a", { class: "marker", href: `#${citationId(turn, n)}`, "aria-label": `source ${n}` }, `[${n}]`);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    const details = document.getElementById(citationId(turn, n));
    if (!details) return;
    details.open = true;
    details.querySelector("summary").focus();
    details.scrollIntoView({ block: "nearest" });
  });
  return link;
}

function sourceCard(turn, answer, citation) {
  const n = answer.marker;
  const title = citation.title || citation.document_id;
  const details = el("details", { class: "citation", id: citationId(turn, n) });
  details.appendChild(
    el("summary", {}, el("span", { class: "marker" }, `[${n}]`),
      el("span", { class: "card-head" }, el("span", { class: "doc-title" }, title), el("span", { class: "doc-meta" }, sourceMeta(citation))))
  );
  const body = el("div", { class: "citation-body" });
  body.appendChild(el("p", { class: "paragraph" },
    highlighted(citation.paragraph_text, answer.context_start, answer.context_end, citation.answer_start, citation.answer_end)));
  const links = el("p", { class: "doc-links" }, el("a", { href: documentLink(citation, answer) }, "Open in document"));
  const original = answer.source_url ? safeHttpUrl(answer.source_url) : null;
  if (original) links.append(" · ", el("a", { href: original, rel: "noopener noreferrer" }, "Original source"));
  body.appendChild(links);
  details.appendChild(body);
  return details;
}

export function citationText(answer, citation) {
  const where = [citation.title || citation.document_id, lastSection(citation.section), pagesLabel(citation.pages),
    `paragraph ${citation.paragraph_index}`].filter(Boolean).join(", ");
  const url = new URL(documentLink(citation, answer), window.location.href).href;
  return `${answer.text}\n\n“${answer.context}”\n— ${where}\n${url}`;
}

export function renderQuestion(question, rewritten) {
  const article = el("article", { class: "turn user", "aria-label": "You asked" }, el("p", { class: "question" }, question));
  if (rewritten && rewritten.trim() !== question.trim()) {
    article.appendChild(el("p", { class: "rewritten" }, "Searched as: ", el("q", {}, rewritten)));
  }
  return article;
}

function copyButton(answer, citation, onCopy) {
  const button = el("button", { type: "button", class: "secondary small copy" }, "Copy answer with citation");
  button.addEventListener("click", () => onCopy(citationText(answer, citation), button));
  return button;
}

export function renderAnswer(turn, response, onCopy) {
  const answers = response.answers || [];
  const citations = response.citations || [];
  if (!citations.length) return renderAbstention(response);
  const article = el("article", { class: "turn assistant", "aria-label": "Answer" });
  const best = answers[0];
  const first = citations[0];
  article.appendChild(el("p", { class: "answer" }, el("span", { class: "visually-hidden" }, "Answer: "),
    el("strong", { class: "answer-text" }, best.text), " ", markerLink(turn, 1)));
  const quote = el("blockquote", { class: "quote" });
  const inContext = first.answer_start - best.context_start;
  if (inContext >= 0 && best.context.slice(inContext, inContext + best.text.length) === best.text) {
    quote.append(best.context.slice(0, inContext), el("strong", {}, best.text), best.context.slice(inContext + best.text.length));
  } else {
    quote.append(best.context);
  }
  quote.append(" ", markerLink(turn, 1));
  article.appendChild(quote);
  article.appendChild(el("p", { class: "actions" }, copyButton(best, first, onCopy)));
  if (answers.length > 1) {
    const others = el("ul", { class: "others" });
    for (const other of answers.slice(1)) others.appendChild(el("li", {}, other.text, " ", markerLink(turn, other.marker)));
    article.append(el("p", { class: "others-title" }, "Other possible answers:"), others);
  }
  const sources = el("div", { class: "sources", role: "group", "aria-label": "Sources" });
  answers.forEach((answer, i) => sources.appendChild(sourceCard(turn, answer, citations[i])));
  article.appendChild(sources);
  return article;
}

// What the service says when it abstains: its no_answer.message (a turn saved before the page kept
// no_answer: the first line of the reply, which is that message).  Never a copy of the sentence.
export function abstentionMessage(response) {
  const noAnswer = response.no_answer;
  return (noAnswer && noAnswer.message) || (response.content || "").split("\n", 1)[0];
}

function renderAbstention(response) {
  const article = el("article", { class: "turn assistant abstained", "aria-label": "No answer" });
  article.appendChild(el("p", { class: "abstain-title" }, abstentionMessage(response)));
  article.appendChild(el("p", {}, "No passage answers this question word for word. The closest passages are below; rephrasing may help."));
  article.appendChild(el("div", { class: "related" }));
  if (response.related) fillRelated(article, response.related);
  return article;
}

// The closest passages of an abstention (from POST /v1/search): no scores, just where and what.
function fillRelated(article, passages) {
  const box = article.querySelector(".related");
  if (!box) return;
  if (!passages.length) {
    box.replaceChildren();
    return;
  }
  const list = el("ul", { class: "related-list" });
  for (const p of passages) {
    const title = p.title || p.document_id;
    const meta = [lastSection(p.section), pagesLabel(p.pages), `paragraph ${p.paragraph_index}`].filter(Boolean).join(" · ");
    const text = p.text.length > 320 ? `${p.text.slice(0, 320)}…` : p.text;
    list.appendChild(el("li", { class: "related-card" }, el("p", { class: "doc-title" }, title), el("p", { class: "doc-meta" }, meta),
      el("p", { class: "related-text" }, text), el("a", { href: documentLink(p, null) }, "Open in document")));
  }
  box.replaceChildren(el("h3", { class: "related-title" }, "Related passages"), list);
}

export function renderError(message) {
  return el("article", { class: "turn error", role: "alert", "aria-label": "Error" }, el("p", {}, `Could not answer: ${message}`));
}
