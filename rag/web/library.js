// The documents panel: list (GET /v1/documents), upload by drag and drop or file picker
// (POST /v1/documents, with progress), delete with confirmation (DELETE /v1/documents/{id}),
// and the example questions drawn from the documents (GET /web/examples).
"use strict";

import { el } from "./render.js";

const KEY_STORE = "rag-api-key"; // sessionStorage: the key is forgotten when the tab closes
const PANEL_PAGE = 500; // documents listed in the panel; the rest stay reachable through search and the API

const $ = (id) => document.getElementById(id);

function formatSize(characters) {
  if (characters >= 1e6) return `${(characters / 1e6).toFixed(1)} M characters`;
  if (characters >= 1e4) return `${Math.round(characters / 1e3)} k characters`;
  return `${characters.toLocaleString("en")} characters`;
}

function formatOf(doc) {
  if (doc.format) return doc.format.toUpperCase();
  const match = /\.([a-z0-9]+)$/i.exec(doc.source_path || "");
  return match ? match[1].toUpperCase() : "TEXT";
}

// The key typed in the panel, for every request of the page (reads may need one too).
export function authHeaders() {
  const key = ($("api-key").value || "").trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export class Library {
  constructor({ onExample, onChange }) {
    this.onExample = onExample;
    this.onChange = onChange;
    this.status = $("library-status");
    this.list = $("documents");
    this.pendingDelete = null;
    try {
      $("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
      if ($("api-key").value) $("key-box").hidden = false;
    } catch (_) {
      /* storage disabled */
    }
    $("api-key").addEventListener("change", () => {
      try {
        sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
      } catch (_) {
        /* ignore */
      }
    });
    this._wireUpload();
    this._wireDialog();
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  async refresh() {
    let documents = [];
    let more = false;
    try {
      // One page (the API lists by id, at most 1000 at a time); a large corpus shows its first page.
      const response = await fetch(`/v1/documents?limit=${PANEL_PAGE}`, { headers: authHeaders() });
      if (response.status === 401) this.askForKey("Reading the documents needs an API key.");
      const body = response.ok ? await response.json() : {};
      documents = body.documents || [];
      more = Boolean(body.next_after);
    } catch (_) {
      this.setStatus("The document list could not be loaded.");
    }
    this._render(documents, more);
    await this.refreshExamples();
    return documents;
  }

  async refreshExamples() {
    let examples = [];
    try {
      const response = await fetch("/web/examples", { headers: authHeaders() });
      examples = response.ok ? (await response.json()).examples || [] : [];
    } catch (_) {
      examples = [];
    }
    const list = $("examples");
    list.replaceChildren(...examples.map((example) => {
      const button = el("button", { type: "button", class: "example" }, example.question);
      button.addEventListener("click", () => this.onExample(example.question));
      return el("li", {}, button);
    }));
    $("examples-box").hidden = examples.length === 0;
  }

  _render(documents, more = false) {
    $("doc-count").textContent = more ? `first ${documents.length} documents (by id)`
      : documents.length === 1 ? "1 document" : `${documents.length} documents`;
    if (!documents.length) {
      this.list.replaceChildren(el("li", { class: "none" }, "No documents yet: add some above."));
      return;
    }
    this.list.replaceChildren(...documents.map((doc) => {
      const title = doc.title || doc.document_id;
      const open = el("a", { href: `/documents/${encodeURIComponent(doc.document_id)}`, class: "doc-link" }, title);
      const meta = el("p", { class: "doc-meta" }, [formatOf(doc), formatSize(doc.characters || 0),
        doc.passages === 1 ? "1 passage" : `${doc.passages} passages`].join(" · "));
      const remove = el("button", { type: "button", class: "secondary small danger-text", "aria-label": `Remove ${title}` }, "Remove");
      remove.addEventListener("click", () => this._confirmDelete(doc.document_id, title, remove));
      return el("li", { class: "document", "data-id": doc.document_id }, el("div", { class: "doc-text" }, open, meta), remove);
    }));
  }

  askForKey(message) {
    $("key-box").hidden = false;
    this.setStatus(message);
    $("api-key").focus();
  }

  // ------------------------------------------------------------------------- upload
  _wireUpload() {
    const zone = $("drop-zone");
    const input = $("file-input");
    input.addEventListener("change", () => {
      if (input.files.length) this.upload([...input.files]);
      input.value = "";
    });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    }
    for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
      if (files.length) this.upload(files);
    });
  }

  upload(files) {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const names = files.map((f) => f.name).join(", ");
    const state = $("upload-state");
    const bar = $("upload-progress");
    state.hidden = false;
    bar.value = 0;
    $("upload-label").textContent = `Uploading ${names}…`;
    // XMLHttpRequest rather than fetch: only it reports upload progress.
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/documents");
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    request.upload.addEventListener("load", () => {
      bar.removeAttribute("value"); // indeterminate while the server reads and indexes the files
      $("upload-label").textContent = `Indexing ${names}…`;
    });
    return new Promise((resolve) => {
      request.addEventListener("loadend", async () => {
        state.hidden = true;
        let body = {};
        try {
          body = JSON.parse(request.responseText || "{}");
        } catch (_) {
          body = {};
        }
        if (request.status === 201) {
          this.setStatus(`Added ${names}: ${body.passages} passages in ${body.documents} documents. Answers use them now.`);
          await this.refresh();
          this.onChange();
        } else if (request.status === 401 || request.status === 403) {
          this.askForKey(`Not added: ${body.detail || "an API key is needed"}. Enter a key with write access and try again.`);
        } else if (request.status === 0) {
          this.setStatus("Not added: the service could not be reached.");
        } else {
          this.setStatus(`Not added: ${body.detail || `HTTP ${request.status}`}`);
        }
        resolve(request.status);
      });
      request.send(form);
    });
  }

  // ------------------------------------------------------------------------- delete
  _wireDialog() {
    const dialog = $("confirm-delete");
    dialog.addEventListener("close", () => {
      const pending = this.pendingDelete;
      this.pendingDelete = null;
      if (!pending) return;
      if (dialog.returnValue === "delete") this.remove(pending.id, pending.title);
      else pending.button.focus();
    });
  }

  _confirmDelete(id, title, button) {
    this.pendingDelete = { id, title, button };
    $("confirm-text").textContent = `“${title}” will be removed from the index. Answers stop citing it at once.`;
    const dialog = $("confirm-delete");
    dialog.returnValue = "";
    dialog.showModal();
    $("confirm-cancel").focus();
  }

  async remove(id, title) {
    let response;
    try {
      response = await fetch(`/v1/documents/${encodeURIComponent(id)}`, { method: "DELETE", headers: authHeaders() });
    } catch (_) {
      this.setStatus("Not removed: the service could not be reached.");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      this.setStatus(`Removed “${title}”.`);
      await this.refresh();
      this.onChange();
      $("file-input").focus();
    } else if (response.status === 401 || response.status === 403) {
      this.askForKey(`Not removed: ${body.detail || "an API key is needed"}. Enter a key with write access and try again.`);
    } else {
      this.setStatus(`Not removed: ${body.detail || `HTTP ${response.status}`}`);
    }
  }
}
