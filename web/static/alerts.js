// Alerts: firing first, then resolved, from the feed.

import { store } from './feed.js';
import * as fmt from './fmt.js';
import { h } from './ui.js';

const ORDER = { firing: 0, pending: 1, resolved: 2 };
const SEV = { critical: 0, warning: 1, info: 2 };

// mount renders #/alerts.
export function mount(main) {
  const tbody = h('tbody');
  const table = h('table', { class: 'grid alerts' },
    h('thead', null, h('tr', null, h('th', null, 'State'), h('th', null, 'Severity'), h('th', null, 'Rule'), h('th', null, 'Queue'),
      h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Threshold'), h('th', null, 'Since'), h('th', null, 'Resolved'), h('th', null, 'Summary'))),
    tbody);
  const empty = h('div', { class: 'empty', hidden: true }, h('h2', null, 'No alerts'), h('p', null, 'Nothing fired in the last hour. Rules and thresholds: chute alerts --rules, docs/operations.md.'));
  main.append(h('div', { class: 'toolbar' }, h('h1', null, 'Alerts')), h('div', { class: 'table-wrap auto' }, table), empty);

  let sig = '';
  function update() {
    const next = JSON.stringify([store.alerts, store.ready, Math.floor((store.t || 0) / 10000)]);
    if (next === sig) return;
    sig = next;
    const list = [...store.alerts].sort((a, b) => (ORDER[a.st] ?? 3) - (ORDER[b.st] ?? 3) || (SEV[a.sev] ?? 3) - (SEV[b.sev] ?? 3) || (b.start || 0) - (a.start || 0));
    empty.hidden = list.length > 0 || !store.ready;
    table.parentElement.hidden = list.length === 0;
    const now = store.t || Date.now();
    tbody.replaceChildren(...list.map((a) => h('tr', { class: `alert-row st-${a.st}`, 'data-rule': a.rule, 'data-queue': a.q || '' },
      h('td', null, h('span', { class: `tag ${a.st === 'firing' ? 'danger' : a.st === 'pending' ? 'warn' : 'ok'}` }, a.st)),
      h('td', null, h('span', { class: `sev sev-${a.sev}` }, a.sev)),
      h('td', null, h('code', null, a.rule)),
      h('td', null, a.q ? h('a', { href: `#/queue/${encodeURIComponent(a.q)}` }, a.q) : h('span', { class: 'muted' }, 'broker')),
      h('td', { class: 'num', title: `when it fired: ${a.v}` }, fmt.rate(a.cur ?? a.v)),
      h('td', { class: 'num' }, fmt.rate(a.th)),
      h('td', { title: `condition since ${fmt.time(a.since)}, fired ${fmt.time(a.start)}` }, a.st === 'resolved' ? fmt.time(a.start) : fmt.ago(a.start || a.since, now)),
      h('td', null, a.res ? fmt.time(a.res) : '–'),
      h('td', { class: 'wrap' }, a.sum || ''))));
  }
  return { update, destroy() {} };
}
