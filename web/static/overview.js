// The overview: every queue in one virtualised, sortable, filterable table
// that updates in place from the feed.

import { createQueue, subscribe as subscribeDialog } from './actions.js';
import { store } from './feed.js';
import * as fmt from './fmt.js';
import { h, setText } from './ui.js';

const ROW = 34; // px; keep in step with tr.qrow in app.css
const MARGIN = 8; // rows rendered above and below the visible ones

// COLS are the table's columns; lo ones are dropped on narrow screens.
const COLS = [
  { k: 'n', label: 'Queue' },
  { k: 'r', label: 'Ready', f: fmt.int, title: 'Ready messages' },
  { k: 'd', label: 'Delayed', f: fmt.int, lo: true, title: 'Delayed messages' },
  { k: 'f', label: 'In flight', f: fmt.int, title: 'Leased, not yet acked' },
  { k: 'pr', label: 'Publish', unit: 'msg/s', f: fmt.rate, title: 'Published per second' },
  { k: 'dr', label: 'Deliver', unit: 'msg/s', f: fmt.rate, lo: true, title: 'Delivered per second' },
  { k: 'ar', label: 'Ack', unit: 'msg/s', f: fmt.rate, title: 'Acked per second' },
  { k: 'age', label: 'Oldest', f: fmt.ms, title: 'Age of the oldest ready message' },
  { k: 'c', label: 'Consumers', f: fmt.int, lo: true, title: 'Active consumers' },
  { k: 'p', label: 'Producers', f: fmt.int, lo: true, title: 'Active producers' },
  { k: 'w99', label: 'Wait p99', f: fmt.ms, lo: true, title: '99th percentile of the wait from due to first delivery' },
];

// state survives leaving and coming back to the overview.
const state = { sort: 'n', dir: 1, filter: '', scrollTop: 0, emptyDL: false };
try {
  const saved = JSON.parse(localStorage.getItem('chute.overview.sort') || 'null');
  if (saved && COLS.some((c) => c.k === saved.sort)) Object.assign(state, { sort: saved.sort, dir: saved.dir === -1 ? -1 : 1 });
} catch { /* no saved sort */ }

// tags returns the small labels shown after a queue's name.
export function tags(q) {
  const out = [];
  if (q.tp) out.push(h('span', { class: 'tag topic', title: `Subscription of topic ${q.tp}` }, `⇢ ${q.tp}`));
  if (q.dl) out.push(h('span', { class: `tag dl${q.dead || q.r ? ' full' : ''}`, title: 'Dead-letter queue' }, 'dead letters'));
  if (q.pause) out.push(h('span', { class: 'tag warn', title: 'Paused by hand: no deliveries' }, 'paused'));
  if (q.brk && q.brk !== 'closed') out.push(h('span', { class: `tag ${q.brk === 'open' ? 'danger' : 'warn'}`, title: 'Circuit breaker' }, `breaker ${q.brk}`));
  return out;
}

function tagKey(q) {
  return `${q.tp}|${q.dl}|${q.pause}|${q.brk}|${!!(q.dl && (q.dead || q.r))}`;
}

// mount renders the overview into main.
export function mount(main, _params, ctx) {
  const filter = h('input', { id: 'filter', type: 'search', placeholder: 'Filter queues  ( / )', 'aria-label': 'Filter queues by name', autocomplete: 'off', spellcheck: 'false' });
  filter.value = state.filter;
  const count = h('span', { class: 'muted count' });
  // Dead-letter queues that hold nothing (every queue has one by default)
  // are hidden unless asked for, or named by the filter, as chute dlq ls does.
  const emptyDL = h('input', { type: 'checkbox', id: 'show-empty-dlq' });
  emptyDL.checked = state.emptyDL;
  emptyDL.addEventListener('change', () => { state.emptyDL = emptyDL.checked; refresh(true); });
  const toolbar = h('div', { class: 'toolbar' },
    h('h1', null, 'Queues'), count, h('span', { class: 'spring' }),
    h('label', { class: 'check muted', title: 'Show dead-letter queues that hold no message' }, emptyDL, ' empty dead-letter queues'),
    filter,
    ctx.canAdmin ? h('button', { class: 'btn', type: 'button', id: 'subscribe', onclick: () => subscribeDialog() }, 'Subscribe…') : null,
    ctx.canAdmin ? h('button', { class: 'btn primary', type: 'button', id: 'create-queue', onclick: () => createQueue(ctx.navigate) }, 'Create queue') : null,
  );

  const ths = COLS.map((c) => {
    const th = h('th', { 'data-sort': c.k, class: (c.k === 'n' ? 'name' : 'num') + (c.lo ? ' lo' : ''), title: c.title, scope: 'col' },
      h('button', { type: 'button', class: 'sort' }, c.label, c.unit ? h('small', null, ` ${c.unit}`) : null, h('span', { class: 'arrow', 'aria-hidden': 'true' })));
    th.addEventListener('click', () => {
      if (state.sort === c.k) state.dir = -state.dir;
      else { state.sort = c.k; state.dir = c.k === 'n' ? 1 : -1; }
      try { localStorage.setItem('chute.overview.sort', JSON.stringify({ sort: state.sort, dir: state.dir })); } catch { /* private mode */ }
      wrap.scrollTop = 0;
      refresh(true);
    });
    return th;
  });
  const top = h('tr', { class: 'spacer', 'aria-hidden': 'true' });
  const bottom = h('tr', { class: 'spacer', 'aria-hidden': 'true' });
  const tbody = h('tbody', null, top, bottom);
  const table = h('table', { class: 'grid queues' }, h('thead', null, h('tr', null, ths)), tbody);
  const wrap = h('div', { class: 'table-wrap', id: 'queues-wrap' }, table);
  const empty = h('div', { class: 'empty', hidden: true });
  main.append(toolbar, wrap, empty);

  let names = []; // filtered, sorted
  const pool = []; // tr elements shown, by position from `first`
  let first = 0;

  function compare(a, b) {
    const k = state.sort;
    if (k === 'n') return state.dir * (a.n < b.n ? -1 : a.n > b.n ? 1 : 0);
    const d = (Number(a[k]) || 0) - (Number(b[k]) || 0);
    if (d !== 0) return state.dir * d;
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0; // stable: by name
  }

  function recompute() {
    const f = state.filter.toLowerCase();
    const rows = [];
    for (const q of store.queues.values()) {
      if (f ? !q.n.toLowerCase().includes(f) : !state.emptyDL && q.dl && !(q.r || q.d || q.f || q.dead)) continue;
      rows.push(q);
    }
    rows.sort(compare);
    names = rows.map((q) => q.n);
  }

  function makeRow() {
    const tr = h('tr', { class: 'qrow' });
    for (const c of COLS) {
      tr.append(h('td', { 'data-col': c.k, class: (c.k === 'n' ? 'name' : 'num') + (c.lo ? ' lo' : '') }));
    }
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && e.target === tr) ctx.navigate(`#/queue/${encodeURIComponent(tr.dataset.queue)}`);
    });
    tr.addEventListener('click', (e) => {
      if (e.target.closest('a')) return;
      if (window.getSelection().toString()) return; // selecting text, not opening
      ctx.navigate(`#/queue/${encodeURIComponent(tr.dataset.queue)}`);
    });
    return tr;
  }

  function fillRow(tr, q) {
    if (tr.dataset.queue !== q.n || tr._tags !== tagKey(q)) {
      tr.dataset.queue = q.n;
      tr._tags = tagKey(q);
      const cell = tr.firstChild;
      cell.replaceChildren(h('a', { href: `#/queue/${encodeURIComponent(q.n)}`, title: q.n }, q.n), ...tags(q));
    }
    tr.classList.toggle('stuck', (q.r > 0 && q.c === 0) || q.brk === 'open' || !!q.pause);
    tr.classList.toggle('has-dead', !!q.dl && (q.dead > 0 || q.r > 0));
    let td = tr.firstChild.nextSibling;
    for (let i = 1; i < COLS.length; i++, td = td.nextSibling) {
      const c = COLS[i];
      const v = q[c.k];
      setText(td, c.f(v));
      td.classList.toggle('zero', !v);
    }
  }

  function render() {
    const total = names.length;
    const viewTop = Math.max(0, wrap.scrollTop - (table.tHead?.offsetHeight || 0));
    const height = Math.max(wrap.clientHeight, window.innerHeight); // max-height: the wrap may not have grown yet
    first = Math.max(0, Math.floor(viewTop / ROW) - MARGIN);
    const last = Math.min(total, Math.ceil((viewTop + height) / ROW) + MARGIN);
    const n = Math.max(0, last - first);
    while (pool.length < n) {
      const tr = makeRow();
      tbody.insertBefore(tr, bottom);
      pool.push(tr);
    }
    while (pool.length > n) pool.pop().remove();
    for (let i = 0; i < n; i++) {
      const q = store.queues.get(names[first + i]);
      fillRow(pool[i], q);
    }
    top.style.height = `${first * ROW}px`;
    bottom.style.height = `${Math.max(0, total - last) * ROW}px`;
  }

  function renderHeader() {
    for (const th of ths) {
      const on = th.dataset.sort === state.sort;
      th.setAttribute('aria-sort', on ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
      th.querySelector('.arrow').textContent = on ? (state.dir > 0 ? ' ▲' : ' ▼') : '';
    }
  }

  function renderEmpty() {
    const none = store.queues.size === 0;
    const nomatch = !none && names.length === 0;
    wrap.hidden = (none && store.ready) || nomatch;
    empty.hidden = !(none && store.ready) && !nomatch;
    if (none && store.ready) {
      empty.replaceChildren(
        h('h2', null, 'No queues yet'),
        h('p', null, 'Create one from a terminal:'),
        h('pre', null, h('code', null, 'chute queue create orders\nchute pub orders \'{"id": 1}\'')),
        ctx.canAdmin ? h('p', null, 'or ', h('button', { class: 'btn primary', type: 'button', onclick: () => createQueue(ctx.navigate) }, 'Create queue'), ' here.') : null,
      );
    } else if (nomatch) {
      empty.replaceChildren(h('p', null, `No queue name contains "${state.filter}". `, h('button', { class: 'btn small', type: 'button', onclick: () => { filter.value = ''; state.filter = ''; refresh(true); } }, 'Clear filter')));
    }
    setText(count, store.ready ? (names.length === store.queues.size ? fmt.int(names.length) : `${fmt.int(names.length)} of ${fmt.int(store.queues.size)}`) : '');
  }

  function refresh(reset) {
    recompute();
    renderHeader();
    renderEmpty();
    if (reset && wrap.scrollTop > names.length * ROW) wrap.scrollTop = 0;
    render();
  }

  let raf = 0;
  wrap.addEventListener('scroll', () => {
    state.scrollTop = wrap.scrollTop;
    if (!raf) raf = requestAnimationFrame(() => { raf = 0; render(); });
  }, { passive: true });
  filter.addEventListener('input', () => { state.filter = filter.value; refresh(true); });
  filter.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { filter.value = ''; state.filter = ''; refresh(true); filter.blur(); }
    if (e.key === 'Enter' || e.key === 'ArrowDown') {
      const a = pool[0]?.querySelector('a');
      if (a) { e.preventDefault(); if (e.key === 'Enter' && names.length === 1) a.click(); else a.focus(); }
    }
  });

  // j / k move between rows.
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
    if (e.target instanceof HTMLInputElement) return;
    if (e.key !== 'j' && e.key !== 'k') return;
    const cur = document.activeElement?.closest?.('tr.qrow');
    let idx = cur ? first + pool.indexOf(cur) : first - 1;
    idx += e.key === 'j' ? 1 : -1;
    if (idx < 0 || idx >= names.length) return;
    e.preventDefault();
    const headH = table.tHead?.offsetHeight || 0;
    const y = idx * ROW;
    if (y < wrap.scrollTop) wrap.scrollTop = y;
    else if (y + ROW + headH > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = y + ROW + headH - wrap.clientHeight;
    render();
    pool[idx - first]?.querySelector('a')?.focus();
  }
  document.addEventListener('keydown', onKey);

  const ro = new ResizeObserver(() => render());
  ro.observe(wrap);

  refresh(false);
  requestAnimationFrame(() => { wrap.scrollTop = state.scrollTop; render(); });

  return {
    update() { refresh(false); },
    destroy() {
      ro.disconnect();
      document.removeEventListener('keydown', onKey);
      if (raf) cancelAnimationFrame(raf);
    },
  };
}
