// Rendering of peeked messages and their bodies.

import { decodeBody } from './api.js';
import * as fmt from './fmt.js';
import { h } from './ui.js';

const COLLAPSE_LINES = 8;

// bodyView shows a base64 body: pretty JSON when it parses, text
// otherwise, a hex dump for binary; long bodies collapse behind "Show all".
export function bodyView(b64) {
  const b = decodeBody(b64);
  let text = b.text;
  let kind = 'text';
  if (b.binary) kind = 'binary';
  else if (b.json !== undefined) { text = JSON.stringify(b.json, null, 2); kind = 'json'; }
  const pre = h('pre', { class: `peek-body ${kind}` }, text || '(empty)');
  const lines = text.split('\n').length;
  const parts = [];
  if (kind === 'binary') parts.push(h('div', { class: 'muted small' }, `binary body, ${fmt.bytes(b.size)}; first bytes in hex:`));
  parts.push(pre);
  if (lines > COLLAPSE_LINES || text.length > 800) {
    pre.classList.add('collapsed');
    const more = h('button', { type: 'button', class: 'btn small link' }, `Show all (${fmt.int(lines)} lines, ${fmt.bytes(b.size)})`);
    more.onclick = () => {
      const c = pre.classList.toggle('collapsed');
      more.textContent = c ? `Show all (${fmt.int(lines)} lines, ${fmt.bytes(b.size)})` : 'Show less';
    };
    parts.push(more);
  }
  return h('div', { class: 'body-view' }, parts);
}

// headersView lists a message's headers as key=value chips.
export function headersView(headers) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return null;
  return h('div', { class: 'headers' }, entries.map(([k, v]) => h('span', { class: 'chip' }, h('b', null, k), '=', v)));
}

// peekItem renders one Delivery from Peek as a .peek-msg card.
export function peekItem(m) {
  return h('article', { class: 'peek-msg', 'data-seq': m.seq },
    h('header', null,
      h('span', { class: 'seq' }, `#${m.seq}`),
      m.id ? h('span', { class: 'chip', title: 'Message ID' }, `id ${m.id}`) : null,
      m.key ? h('span', { class: 'chip', title: 'Ordering key' }, `key ${m.key}`) : null,
      h('span', { title: 'Priority' }, `priority ${m.priority || 0}`),
      h('span', { title: 'Deliveries so far' }, `deliveries ${m.deliveries || 0}`),
      h('span', { class: 'muted', title: m.published || '' }, `published ${fmt.time(m.published)}`),
      m.lastError ? h('span', { class: 'err', title: 'Last error' }, m.lastError) : null,
    ),
    headersView(m.headers),
    bodyView(m.body),
  );
}
