// Conversations kept in the browser (localStorage): a list of {id, title, turns, updated}, newest
// first, and which one is open.  Nothing is sent anywhere; clearing site data clears them.
"use strict";

const KEY = "rag-conversations-v1";
const CURRENT = "rag-conversation-current-v1";
// A browser's localStorage holds ~5 MB per site; 50 conversations of a few turns each stay far
// below that even with long quoted paragraphs.
const MAX_CONVERSATIONS = 50;

function read() {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(stored) ? stored.filter((c) => c && typeof c.id === "string" && Array.isArray(c.turns)) : [];
  } catch (_) {
    return [];
  }
}

function write(conversations) {
  try {
    localStorage.setItem(KEY, JSON.stringify(conversations.slice(0, MAX_CONVERSATIONS)));
  } catch (_) {
    /* storage full or disabled: the conversation still works in this page */
  }
}

function newId() {
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

export class Conversations {
  constructor() {
    this.all = read();
    let current = null;
    try {
      current = localStorage.getItem(CURRENT);
    } catch (_) {
      current = null;
    }
    this.currentId = this.all.some((c) => c.id === current) ? current : null;
  }

  get current() {
    return this.all.find((c) => c.id === this.currentId) || null;
  }

  get turns() {
    return this.current ? this.current.turns : [];
  }

  select(id) {
    this.currentId = this.all.some((c) => c.id === id) ? id : null;
    this._saveCurrent();
  }

  startNew() {
    this.currentId = null; // created on the first question, so empty conversations are not listed
    this._saveCurrent();
  }

  addTurn(turn) {
    let conversation = this.current;
    if (!conversation) {
      conversation = { id: newId(), title: turn.question.slice(0, 80), turns: [], updated: 0 };
      this.all.unshift(conversation);
      this.currentId = conversation.id;
    }
    conversation.turns.push(turn);
    conversation.updated = Date.now();
    this.all = [conversation, ...this.all.filter((c) => c !== conversation)];
    write(this.all);
    this._saveCurrent();
  }

  remove(id) {
    this.all = this.all.filter((c) => c.id !== id);
    if (this.currentId === id) this.currentId = null;
    write(this.all);
    this._saveCurrent();
  }

  _saveCurrent() {
    try {
      if (this.currentId) localStorage.setItem(CURRENT, this.currentId);
      else localStorage.removeItem(CURRENT);
    } catch (_) {
      /* ignore */
    }
  }
}
