// The OpenAI Node SDK against the service, as docs/chat-clients.md shows it: a plain completion,
// a streamed one (content deltas, then the citations chunk) and a follow-up.  Prints one JSON
// object that tests/test_chat_clients.py checks.  Usage: node tests/node/chat.mjs <base URL ending in /v1>
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused", maxRetries: 0 });
const question = "Who was NATO's first Secretary General?";

// plain
const reply = await client.chat.completions.create({
  model: "rag-default",
  messages: [{ role: "user", content: question }],
});
const message = reply.choices[0].message;
const markers = (message.annotations ?? []).map((a) =>
  message.content.slice(a.url_citation.start_index, a.url_citation.end_index));

// streamed, a follow-up: the extension fields are plain properties of the chunk (chunk.citations)
const history = [
  { role: "user", content: question },
  { role: "assistant", content: message.content },
  { role: "user", content: "and where did it hold its 75th anniversary summit?" },
];
const stream = await client.chat.completions.create({ model: "rag-default", messages: history, stream: true });
let text = "";
let pieces = 0;
let cited = null;
let streamedMarkers = [];
let finish = null;
let events = [];
for await (const chunk of stream) {
  if (chunk.event) events.push(chunk.event.type);
  const delta = chunk.choices[0]?.delta ?? {};
  if (delta.content) {
    text += delta.content;
    pieces += 1;
  }
  if (chunk.citations?.length) {
    cited = { asked_as: chunk.rewritten_question, documents: chunk.citations.map((c) => c.document_id) };
    streamedMarkers = (delta.annotations ?? []).map((a) => a.url_citation);
  }
  finish = chunk.choices[0]?.finish_reason ?? finish;
}

console.log(JSON.stringify({
  content: message.content,
  markers,
  urls: (message.annotations ?? []).map((a) => a.url_citation.url),
  paragraph: reply.citations[0].paragraph_text,
  source: { name: reply.sources[0].source.name, document: reply.sources[0].document[0] },
  streamed: { text, pieces, cited, finish, events, markers: streamedMarkers.map((c) => text.slice(c.start_index, c.end_index)) },
}));
