// The queue page: figures, charts, configuration, breaker, peek, clients
// and the admin actions for one queue.

import { configFields, configFromForm } from './actions.js';
import { getJSON, rpc } from './api.js';
import { countFmt, lineChart, msFmt, rateFmt } from './charts.js';
import { store } from './feed.js';
import * as fmt from './fmt.js';
import { peekItem } from './message.js';
import { tags } from './overview.js';
import { confirmAction, formDialog, h, plural, setText, toast } from './ui.js';

const MAX_POINTS = 1200; // 10 min of history plus 10 min of live samples
const CLIENTS_EVERY = 5000; // ms between consumer list refreshes

// STATS are the figures shown in cards; [data-stat=KEY][data-value=raw].
const STATS = [
  { k: 'r', label: 'Ready', f: fmt.int },
  { k: 'd', label: 'Delayed', f: fmt.int },
  { k: 'f', label: 'In flight', f: fmt.int },
  { k: 'b', label: 'Bytes', f: fmt.bytes },
  { k: 'age', label: 'Oldest ready', f: fmt.ms },
  { k: 'pr', label: 'Publish', f: (v) => `${fmt.rate(v)} msg/s` },
  { k: 'dr', label: 'Deliver', f: (v) => `${fmt.rate(v)} msg/s` },
  { k: 'ar', label: 'Ack', f: (v) => `${fmt.rate(v)} msg/s` },
  { k: 'c', label: 'Consumers', f: fmt.int },
  { k: 'p', label: 'Producers', f: fmt.int },
  { k: 'w99', label: 'Wait p50 / p99', f: (v, q) => `${fmt.ms(q.w50)} / ${fmt.ms(v)}` },
  { k: 'pc99', label: 'Processing p50 / p99', f: (v, q) => `${fmt.ms(q.pc50)} / ${fmt.ms(v)}` },
  { k: 'pub', label: 'Published', f: fmt.int },
  { k: 'ack', label: 'Acked', f: fmt.int },
  { k: 'dlt', label: 'Dead-lettered', f: fmt.int },
];

// mount renders the page of queue params.name.
export function mount(main, params, ctx) {
  const name = params.name;
  const esc = encodeURIComponent(name);
  let alive = true;
  const timers = [];

  const title = h('h1', { id: 'queue-title' }, name);
  const tagBox = h('span', { class: 'tags' });
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Queues'), ' / ');
  const pauseBtn = h('button', { id: 'pause', class: 'btn', type: 'button', hidden: true }, 'Pause');
  const resumeBtn = h('button', { id: 'resume', class: 'btn primary', type: 'button', hidden: true }, 'Resume');
  const purgeBtn = h('button', { id: 'purge', class: 'btn danger-outline', type: 'button' }, 'Purge…');
  const deleteBtn = h('button', { id: 'delete-queue', class: 'btn danger-outline', type: 'button' }, 'Delete…');
  const editBtn = h('button', { id: 'edit-config', class: 'btn', type: 'button' }, 'Edit configuration…');
  const actions = h('div', { class: 'actions' }, ctx.canAdmin ? [pauseBtn, resumeBtn, editBtn, purgeBtn, deleteBtn] : null);
  const head = h('div', { class: 'page-head' }, h('div', null, crumbs, h('div', { class: 'title-row' }, title, tagBox)), actions);

  const breaker = h('div', { id: 'breaker', class: 'breaker', 'data-state': 'closed' });
  const dlqLink = h('div', { class: 'dlq-link' });
  const cards = h('div', { class: 'stats' }, STATS.map((s) => h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, s.label), h('div', { class: 'stat-value', 'data-stat': s.k, 'data-value': '0' }, '–'))));
  const gone = h('div', { class: 'empty', hidden: true }, h('h2', null, `No queue named "${name}"`), h('p', null, h('a', { href: '#/' }, 'Back to the queues')));

  const chartDepth = h('div', { id: 'chart-depth', class: 'chart', 'data-points': '0' });
  const chartRates = h('div', { id: 'chart-rates', class: 'chart', 'data-points': '0' });
  const chartLat = h('div', { id: 'chart-latency', class: 'chart', 'data-points': '0' });
  const charts = h('section', { class: 'charts' },
    h('figure', null, h('figcaption', null, 'Depth'), chartDepth),
    h('figure', null, h('figcaption', null, 'Rates (msg/s)'), chartRates),
    h('figure', null, h('figcaption', null, 'Wait p99'), chartLat));

  const configBox = h('dl', { class: 'config' }, h('dt', null, 'Loading…'));
  const clientsBox = h('div', { class: 'clients' }, h('p', { class: 'muted' }, 'Loading…'));
  const peekBtn = h('button', { id: 'peek', class: 'btn', type: 'button' }, 'Peek 20');
  const peekList = h('div', { class: 'peek-list' }, h('p', { class: 'muted' }, 'Peek shows the next messages without taking them.'));

  main.append(head, gone,
    h('div', { class: 'status-row' }, breaker, dlqLink),
    cards, charts,
    h('div', { class: 'two-col' },
      h('section', { class: 'panel' }, h('h2', null, 'Configuration'), configBox),
      h('section', { class: 'panel' }, h('h2', null, 'Clients'), clientsBox)),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, 'Messages'), peekBtn), peekList));

  // Charts: history first, then one point per feed event.
  const series = { t: [], r: [], d: [], f: [], pr: [], ar: [], w99: [] };
  let loaded = false;
  const pending = [];
  const cDepth = lineChart(chartDepth, [
    { label: 'ready', color: '--c1' }, { label: 'delayed', color: '--c3' }, { label: 'in flight', color: '--c2' }], countFmt);
  const cRates = lineChart(chartRates, [{ label: 'publish', color: '--c1' }, { label: 'ack', color: '--c2' }], rateFmt);
  const cLat = lineChart(chartLat, [{ label: 'wait p99', color: '--c4' }], msFmt);

  function push(t, q) {
    const n = series.t.length;
    if (n && t <= series.t[n - 1]) return;
    series.t.push(t); series.r.push(q.r); series.d.push(q.d); series.f.push(q.f);
    series.pr.push(q.pr); series.ar.push(q.ar); series.w99.push(q.w99);
    if (series.t.length > MAX_POINTS) for (const k of Object.keys(series)) series[k].shift();
  }
  function redraw() {
    const x = series.t.map((t) => t / 1000);
    cDepth.set([x, series.r, series.d, series.f]);
    cRates.set([x, series.pr, series.ar]);
    cLat.set([x, series.w99]);
  }
  // The history is asked for once the feed lists the queue: the server
  // keeps history only for queues it has sampled (a new one 404s before).
  let historyAsked = false;
  function loadHistory() {
    historyAsked = true;
    getJSON(`/ui/api/history?queue=${esc}`).then((hist) => {
      if (!alive) return;
      const t = hist.t || [];
      for (let i = 0; i < t.length; i++) {
        push(t[i], { r: hist.r[i], d: hist.d[i], f: hist.f[i], pr: hist.pr[i], ar: hist.ar[i], w99: hist.w99[i] });
      }
    }).catch((e) => {
      if (alive && e.status !== 404) toast(`History: ${e.message}`, 'error');
    }).finally(() => {
      if (!alive) return;
      loaded = true;
      for (const [t, q] of pending) push(t, q);
      pending.length = 0;
      redraw();
    });
  }

  // Configuration, from GetQueue. A negative duration means "none".
  const pos = (d) => (fmt.parseDuration(d) || 0) > 0;
  let config = {};
  function renderConfig(qs) {
    config = qs.config || {};
    const c = config;
    const row = (k, v) => [h('dt', null, k), h('dd', null, v)];
    const brk = c.breaker || {};
    configBox.replaceChildren(
      ...row('Max deliveries', c.maxDeliveries == null ? '10 (default)' : c.maxDeliveries < 0 ? 'unlimited' : fmt.int(c.maxDeliveries)),
      ...row('Visibility timeout', c.visibilityTimeout ? fmt.duration(c.visibilityTimeout) : 'default'),
      ...row('Message TTL', pos(c.messageTtl) ? fmt.duration(c.messageTtl) : 'none'),
      ...row('Dead-letter queue', c.noDeadLetter ? 'none (discards)' : (c.deadLetterQueue || `${name}.dlq`)),
      ...row('Max messages', Number(c.maxMessages) > 0 ? fmt.int(c.maxMessages) : 'unlimited'),
      ...row('Max bytes', Number(c.maxBytes) > 0 ? fmt.bytes(c.maxBytes) : 'unlimited'),
      ...(c.overflow ? row('Overflow', String(c.overflow).replace('OVERFLOW_', '').toLowerCase().replace('_', ' ')) : []),
      ...row('De-dup window', c.dedupWindow ? (pos(c.dedupWindow) ? fmt.duration(c.dedupWindow) : 'off') : '2 min (default)'),
      ...(c.backoff ? row('Backoff', `${String(c.backoff.kind || '').replace('BACKOFF_KIND_', '').toLowerCase()} ${fmt.duration(c.backoff.delay)}${c.backoff.max ? ` up to ${fmt.duration(c.backoff.max)}` : ''}`) : []),
      ...row('Breaker', brk.enabled ? `on: opens at ${Math.round((brk.threshold || 0.5) * 100)} % failed, cool-down ${brk.cooldown ? fmt.duration(brk.cooldown) : '30 s'}` : 'off'),
      ...(qs.topic ? row('Topic', h('a', { href: '#/topics' }, qs.topic)) : []),
      ...(qs.filter && Object.keys(qs.filter).length ? row('Filter', Object.entries(qs.filter).map(([k, v]) => `${k}=${v}`).join(', ')) : []),
      ...(c.group ? row('Group', c.group) : []),
      ...(c.attributes && Object.keys(c.attributes).length ? row('Attributes', Object.entries(c.attributes).map(([k, v]) => `${k}=${v}`).join(', ')) : []),
    );
  }
  function loadConfig() {
    return rpc('AdminService', 'GetQueue', { name }).then((r) => {
      if (alive) renderConfig(r.queue || {});
    }).catch((e) => {
      if (!alive) return;
      if (e.code === 'not_found') { gone.hidden = false; return; }
      configBox.replaceChildren(h('dt', { class: 'err' }, e.message));
    });
  }
  loadConfig();

  // Clients, from ListConsumers.
  function loadClients() {
    rpc('AdminService', 'ListConsumers', { queue: name }).then((r) => {
      if (!alive) return;
      const cl = r.clients || [];
      if (!cl.length) {
        clientsBox.replaceChildren(h('p', { class: 'muted' }, 'No active consumers or producers.'));
        return;
      }
      clientsBox.replaceChildren(h('table', { class: 'grid small' },
        h('thead', null, h('tr', null, h('th', null, 'Client'), h('th', null, 'Role'), h('th', { class: 'num' }, 'Leases'), h('th', { class: 'num' }, 'In/s'), h('th', { class: 'num' }, 'Out/s'), h('th', null, 'Last seen'))),
        h('tbody', null, cl.map((c) => h('tr', null,
          h('td', { title: c.address }, c.clientId || c.address),
          h('td', null, [c.consumer ? 'consumer' : null, c.producer ? 'producer' : null].filter(Boolean).join(', ')),
          h('td', { class: 'num' }, fmt.int(c.leases || 0)),
          h('td', { class: 'num' }, fmt.rate(c.publishRate)),
          h('td', { class: 'num' }, fmt.rate(c.receiveRate)),
          h('td', null, fmt.time(c.lastSeen)))))));
    }).catch((e) => {
      if (alive) clientsBox.replaceChildren(h('p', { class: 'muted' }, e.message));
    });
  }
  loadClients();
  timers.push(setInterval(loadClients, CLIENTS_EVERY));

  // Peek.
  async function peek() {
    peekBtn.disabled = true;
    try {
      const r = await rpc('MessageService', 'Peek', { queue: name, max: 20 });
      if (!alive) return;
      const ds = r.deliveries || [];
      peekList.replaceChildren(...(ds.length ? ds.map(peekItem) : [h('p', { class: 'muted' }, 'No ready messages.')]));
    } catch (e) {
      toast(`Peek: ${e.message}`, 'error');
    } finally {
      peekBtn.disabled = false;
    }
  }
  peekBtn.onclick = peek;

  // Admin actions.
  async function act(label, fn, done) {
    try {
      const r = await fn();
      toast(done(r));
    } catch (e) {
      toast(`${label}: ${e.message}`, 'error');
    }
  }
  pauseBtn.onclick = () => act('Pause', () => rpc('AdminService', 'PauseQueue', { name }), () => {
    const q = store.queues.get(name);
    if (q) q.pause = true;
    update();
    return `Paused ${name}: no deliveries until resumed`;
  });
  resumeBtn.onclick = () => act('Resume', () => rpc('AdminService', 'ResumeQueue', { name }), () => {
    const q = store.queues.get(name);
    if (q) q.pause = false;
    update();
    return `Resumed ${name}`;
  });
  purgeBtn.onclick = async () => {
    const q = store.queues.get(name);
    const n = q ? q.r + q.d + q.f : 0;
    if (!(await confirmAction(`Purge ${name}?`, `This removes every message of ${name} (${plural(n, 'message')} now, in flight ones included) for good.`, { okLabel: 'Purge' }))) return;
    await act('Purge', () => rpc('AdminService', 'PurgeQueue', { name }), (r) => `Purged ${plural(r.purged || 0, 'message')} from ${name}`);
    if (peekList.querySelector('.peek-msg')) peek();
  };
  deleteBtn.onclick = async () => {
    if (!(await confirmAction(`Delete ${name}?`, `This deletes the queue ${name} and every message in it. It cannot be undone.`, { okLabel: 'Delete queue', typeToConfirm: name }))) return;
    await act('Delete', () => rpc('AdminService', 'DeleteQueue', { name }), () => {
      ctx.navigate('#/');
      return `Deleted queue ${name}`;
    });
  };
  editBtn.onclick = async () => {
    const cfg = config;
    const human = (d) => (pos(d) ? fmt.secondsToHuman(fmt.parseDuration(d)) : '');
    const v = await formDialog(`Configure ${name}`, configFields({ ...cfg, visibilityTimeout: human(cfg.visibilityTimeout), messageTtl: human(cfg.messageTtl) }), async (vals) => {
      await rpc('AdminService', 'UpdateQueue', { name, config: configFromForm(vals, cfg) });
    });
    if (v) {
      toast(`Updated ${name}`);
      loadConfig();
    }
  };

  // Figures from the feed.
  function update() {
    const q = store.queues.get(name);
    if (!q) {
      if (store.ready) gone.hidden = false;
      return;
    }
    gone.hidden = true;
    if (!historyAsked) loadHistory();
    for (const s of STATS) {
      const el = cards.querySelector(`[data-stat="${s.k}"]`);
      const v = q[s.k] ?? 0;
      el.dataset.value = String(v);
      setText(el, s.f(v, q));
      el.parentElement.hidden = s.k === 'dlt' && !q.dlt;
    }
    tagBox.replaceChildren(...tags(q));
    breaker.dataset.state = q.brk || 'closed';
    breaker.dataset.paused = String(!!q.pause);
    const brkText = q.pause
      ? { closed: 'breaker closed', open: 'breaker open', 'half-open': 'breaker half-open' }[q.brk || 'closed']
      : { closed: 'Delivering (breaker closed)', open: 'Breaker open: deliveries withheld until the cool-down ends', 'half-open': 'Breaker half-open: a few probe deliveries' }[q.brk || 'closed'];
    breaker.replaceChildren(
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      ...(q.pause ? [h('b', null, 'Paused by hand: no deliveries until resumed'), ' · '] : []),
      brkText);
    pauseBtn.hidden = !!q.pause;
    resumeBtn.hidden = !q.pause;
    if (q.dlq) {
      const d = store.queues.get(q.dlq);
      const held = d ? (d.dead || d.r) : 0;
      dlqLink.replaceChildren('Dead letters go to ', h('a', { href: `#/dlq/${encodeURIComponent(q.dlq)}` }, q.dlq), ...(held ? [h('span', { class: 'badge danger' }, fmt.int(held))] : []));
    } else if (q.dl) {
      dlqLink.replaceChildren(h('a', { href: `#/dlq/${esc}` }, 'Inspect and redrive these dead letters'));
    } else {
      dlqLink.replaceChildren();
    }
    if (loaded) {
      push(store.t, q);
      redraw();
    } else {
      pending.push([store.t, q]);
    }
  }

  document.title = `${name} · chute`;
  return {
    update,
    destroy() {
      alive = false;
      for (const t of timers) clearInterval(t);
      cDepth.destroy(); cRates.destroy(); cLat.destroy();
      document.title = 'chute';
    },
  };
}
