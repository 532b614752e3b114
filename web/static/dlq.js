// Dead letters: the list of dead-letter queues (#/dlq) and one queue's
// dead letters with redrive and purge (#/dlq/NAME).

import { rpc } from './api.js';
import { store } from './feed.js';
import * as fmt from './fmt.js';
import { bodyView, headersView } from './message.js';
import { confirmAction, h, plural, toast } from './ui.js';

const PEEK_MAX = 100;

// mount renders #/dlq or #/dlq/NAME.
export function mount(main, params, ctx) {
  return params.name ? mountOne(main, params.name, ctx) : mountList(main);
}

// sourceMap maps each dead-letter queue to the sorted queues that send to it.
function sourceMap() {
  const m = new Map();
  for (const q of store.queues.values()) {
    if (!q.dlq) continue;
    if (!m.has(q.dlq)) m.set(q.dlq, []);
    m.get(q.dlq).push(q.n);
  }
  for (const v of m.values()) v.sort();
  return m;
}

function sources(dlName) {
  const out = [];
  for (const q of store.queues.values()) if (q.dlq === dlName) out.push(q.n);
  return out.sort();
}

function mountList(main) {
  const tbody = h('tbody');
  const empty = h('div', { class: 'empty', hidden: true },
    h('h2', null, 'No dead-letter queues'),
    h('p', null, 'A queue sends a message to its dead-letter queue (NAME.dlq unless configured) after too many failed deliveries, or when it expires with dead-lettering on.'));
  main.append(h('div', { class: 'toolbar' }, h('h1', null, 'Dead letters')),
    h('div', { class: 'table-wrap auto' }, h('table', { class: 'grid' },
      h('thead', null, h('tr', null, h('th', null, 'Dead-letter queue'), h('th', null, 'From'), h('th', { class: 'num' }, 'Dead letters'), h('th', { class: 'num' }, 'In'), h('th', { class: 'num' }, 'Oldest'))),
      tbody)), empty);
  let sig = '';
  function update() {
    const dls = [...store.queues.values()].filter((q) => q.dl).sort((a, b) => (b.dead || b.r) - (a.dead || a.r) || (a.n < b.n ? -1 : 1));
    const srcs = sourceMap();
    const srcOf = (n) => srcs.get(n) || [];
    const next = JSON.stringify([dls.map((q) => [q.n, q.dead, q.r, q.pr, q.age, srcOf(q.n)]), store.ready]);
    if (next === sig) return;
    sig = next;
    empty.hidden = dls.length > 0 || !store.ready;
    tbody.closest('.table-wrap').hidden = dls.length === 0 && store.ready;
    tbody.replaceChildren(...dls.map((q) => {
      const held = q.dead || q.r;
      return h('tr', { class: `dlq-row${held ? ' has-dead' : ''}`, 'data-queue': q.n },
        h('td', { class: 'name' }, h('a', { href: `#/dlq/${encodeURIComponent(q.n)}` }, q.n)),
        h('td', null, srcOf(q.n).map((s, i) => [i ? ', ' : '', h('a', { href: `#/queue/${encodeURIComponent(s)}` }, s)])),
        h('td', { class: 'num' }, fmt.int(held)),
        h('td', { class: 'num' }, `${fmt.rate(q.pr)} msg/s`),
        h('td', { class: 'num' }, fmt.ms(q.age)));
    }));
  }
  return { update, destroy() {} };
}

function mountOne(main, name, ctx) {
  let alive = true;
  const esc = encodeURIComponent(name);
  const count = h('span', { class: 'muted count' });
  const selAll = h('input', { type: 'checkbox', id: 'dl-select-all', 'aria-label': 'Select all' });
  const redriveSel = h('button', { id: 'redrive-selected', class: 'btn', type: 'button', disabled: true }, 'Redrive selected');
  const redriveAll = h('button', { id: 'redrive-all', class: 'btn primary', type: 'button' }, 'Redrive all');
  const purge = h('button', { id: 'purge', class: 'btn danger-outline', type: 'button' }, 'Purge…');
  const refresh = h('button', { id: 'dl-refresh', class: 'btn', type: 'button' }, 'Refresh');
  const from = h('p', { class: 'muted' });
  main.append(
    h('div', { class: 'page-head' },
      h('div', null, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/dlq' }, 'Dead letters'), ' / '),
        h('div', { class: 'title-row' }, h('h1', { id: 'queue-title' }, name), count, h('a', { href: `#/queue/${esc}`, class: 'small' }, 'queue page'))),
      h('div', { class: 'actions' }, refresh, ctx.canAdmin ? [redriveSel, redriveAll, purge] : null)),
    from);
  const tbody = h('tbody');
  const table = h('table', { class: 'grid dl' },
    h('thead', null, h('tr', null,
      h('th', { class: 'check' }, selAll), h('th', { class: 'num' }, 'Seq'), h('th', null, 'Reason'), h('th', null, 'Source'),
      h('th', { class: 'num' }, 'Deliveries'), h('th', null, 'Died'), h('th', null, 'Last error'), h('th', null, 'Body'))),
    tbody);
  const empty = h('div', { class: 'empty', hidden: true }, h('h2', null, 'No dead letters'), h('p', null, 'Nothing to redrive: every message was handled.'));
  main.append(h('div', { class: 'table-wrap auto' }, table), empty);

  const selected = new Set();
  let rows = [];

  function syncSelection() {
    redriveSel.disabled = selected.size === 0;
    redriveSel.textContent = selected.size ? `Redrive ${fmt.int(selected.size)} selected` : 'Redrive selected';
    selAll.checked = rows.length > 0 && selected.size === rows.length;
    selAll.indeterminate = selected.size > 0 && selected.size < rows.length;
  }

  function render() {
    empty.hidden = rows.length > 0;
    table.parentElement.hidden = rows.length === 0;
    tbody.replaceChildren(...rows.map((m) => {
      const dl = m.deadLetter || {};
      const cb = h('input', { type: 'checkbox', class: 'dl-select', 'aria-label': `Select #${m.seq}`, value: m.seq });
      cb.checked = selected.has(m.seq);
      cb.onchange = () => { if (cb.checked) selected.add(m.seq); else selected.delete(m.seq); syncSelection(); };
      const body = bodyView(m.body);
      const details = h('details', null, h('summary', null, preview(body)), headersView(m.headers), body);
      return h('tr', { class: 'dl-row', 'data-seq': m.seq },
        h('td', { class: 'check' }, cb),
        h('td', { class: 'num' }, m.seq),
        h('td', null, h('span', { class: `tag ${dl.reason === 'expired' ? 'warn' : 'danger'}` }, dl.reason || '–')),
        h('td', null, dl.source ? h('a', { href: `#/queue/${encodeURIComponent(dl.source)}` }, dl.source) : '–', dl.sourceSeq ? h('span', { class: 'muted' }, ` #${dl.sourceSeq}`) : null),
        h('td', { class: 'num' }, fmt.int(dl.deliveries ?? m.deliveries ?? 0)),
        h('td', { title: dl.died || '' }, fmt.time(dl.died)),
        h('td', { class: 'err wrap' }, dl.lastError || m.lastError || ''),
        h('td', { class: 'body-cell' }, details));
    }));
    syncSelection();
  }

  function preview(body) {
    const t = body.querySelector('.peek-body').textContent.replace(/\s+/g, ' ');
    return t.length > 80 ? `${t.slice(0, 80)}…` : t;
  }

  async function load() {
    refresh.disabled = true;
    try {
      const r = await rpc('MessageService', 'Peek', { queue: name, max: PEEK_MAX });
      if (!alive) return;
      rows = r.deliveries || [];
      const seqs = new Set(rows.map((m) => m.seq));
      for (const s of [...selected]) if (!seqs.has(s)) selected.delete(s);
      render();
    } catch (e) {
      if (alive) toast(`Peek ${name}: ${e.message}`, 'error');
    } finally {
      refresh.disabled = false;
    }
  }

  selAll.onchange = () => {
    if (selAll.checked) for (const m of rows) selected.add(m.seq);
    else selected.clear();
    for (const cb of tbody.querySelectorAll('input.dl-select')) cb.checked = selAll.checked;
    syncSelection();
  };
  refresh.onclick = load;

  redriveSel.onclick = async () => {
    const seqs = [...selected];
    if (!(await confirmAction(`Redrive ${plural(seqs.length, 'dead letter')}?`, 'Each goes back to the queue it came from, ready to be delivered again.', { okLabel: 'Redrive', danger: false }))) return;
    try {
      const r = await rpc('AdminService', 'RedriveMessages', { deadLetterQueue: name, refs: seqs.map((s) => ({ seq: String(s) })) });
      const results = r.results || [];
      const failed = results.filter((x) => !x.moved);
      selected.clear();
      if (failed.length) {
        const why = failed.slice(0, 3).map((x) => `#${x.seq || (x.ref && x.ref.seq) || '?'}: ${(x.error && (x.error.message || x.error.reason)) || 'not moved'}`).join('; ');
        toast(`Redrove ${fmt.int(results.length - failed.length)} of ${fmt.int(seqs.length)}; not moved: ${why}${failed.length > 3 ? '…' : ''}`, 'error');
      } else {
        toast(`Redrove ${plural(results.length, 'dead letter')}`);
      }
    } catch (e) {
      toast(`Redrive: ${e.message}`, 'error');
    }
    load();
  };
  redriveAll.onclick = async () => {
    const q = store.queues.get(name);
    const n = q ? (q.dead || q.r) : rows.length;
    if (!(await confirmAction(`Redrive all dead letters of ${name}?`, `All ${plural(n, 'dead letter')} go back to the queues they came from.`, { okLabel: 'Redrive all', danger: false }))) return;
    try {
      const r = await rpc('AdminService', 'Redrive', { deadLetterQueue: name, max: '0' });
      selected.clear();
      toast(`Redrove ${plural(r.moved || 0, 'dead letter')}`);
    } catch (e) {
      toast(`Redrive: ${e.message}`, 'error');
    }
    load();
  };
  purge.onclick = async () => {
    if (!(await confirmAction(`Purge ${name}?`, 'This deletes every dead letter in this queue for good.', { okLabel: 'Purge' }))) return;
    try {
      const r = await rpc('AdminService', 'PurgeQueue', { name });
      selected.clear();
      toast(`Purged ${plural(r.purged || 0, 'dead letter')} from ${name}`);
    } catch (e) {
      toast(`Purge: ${e.message}`, 'error');
    }
    load();
  };

  load();
  let lastHeld = -1;
  function update() {
    const q = store.queues.get(name);
    const held = q ? (q.dead || q.r) : 0;
    count.textContent = q ? plural(held, 'dead letter') : '';
    const src = sources(name);
    from.replaceChildren(...(src.length ? ['From ', ...src.map((s, i) => [i ? ', ' : '', h('a', { href: `#/queue/${encodeURIComponent(s)}` }, s)]).flat(), '. Showing the oldest ', String(PEEK_MAX), '.'] : []));
    // New dead letters arrived while nothing is selected: reload the list.
    if (lastHeld >= 0 && held !== lastHeld && selected.size === 0 && rows.length < PEEK_MAX) load();
    lastHeld = held;
  }
  return { update, destroy() { alive = false; } };
}
