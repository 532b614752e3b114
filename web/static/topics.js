// Topics: each topic with its counters and its subscriptions.

import { subscribe as subscribeDialog } from './actions.js';
import { store } from './feed.js';
import * as fmt from './fmt.js';
import { h } from './ui.js';

// mount renders #/topics.
export function mount(main, _params, ctx) {
  const tbody = h('tbody');
  const table = h('table', { class: 'grid topics' },
    h('thead', null, h('tr', null, h('th', null, 'Topic / subscription'), h('th', null, 'Filter'),
      h('th', { class: 'num' }, 'Published'), h('th', { class: 'num' }, 'Unrouted'), h('th', { class: 'num' }, 'Publish msg/s'), h('th', { class: 'num' }, 'Ready'))),
    tbody);
  const empty = h('div', { class: 'empty', hidden: true }, h('h2', null, 'No topics'),
    h('p', null, 'A topic copies each message to its subscriptions, queues that may filter on headers:'),
    h('pre', null, h('code', null, 'chute topic create events\nchute subscription create events events.billing --filter type=invoice')));
  main.append(h('div', { class: 'toolbar' }, h('h1', null, 'Topics'), h('span', { class: 'spring' }),
    ctx.canAdmin ? h('button', { class: 'btn primary', type: 'button', id: 'subscribe', onclick: () => subscribeDialog() }, 'Subscribe…') : null),
  h('div', { class: 'table-wrap auto' }, table), empty);

  let sig = '';
  function update() {
    const subsNow = store.topics.map((t) => (t.subs || []).map((x) => { const q = store.queues.get(x.n); return q ? [q.pub, q.pr, q.r] : 0; }));
    const next = JSON.stringify([store.topics, subsNow, store.ready]);
    if (next === sig) return;
    sig = next;
    const list = [...store.topics].sort((a, b) => (a.n < b.n ? -1 : 1));
    empty.hidden = list.length > 0 || !store.ready;
    table.parentElement.hidden = list.length === 0;
    const rows = [];
    for (const t of list) {
      rows.push(h('tr', { class: `topic-row${t.unr > 0 ? ' unrouted' : ''}`, 'data-topic': t.n },
        h('td', { class: 'name' }, h('b', null, t.n), ' ', h('span', { class: 'muted' }, `${(t.subs || []).length} subscriptions`)),
        h('td', null, ctx.canAdmin ? h('button', { class: 'btn small link', type: 'button', onclick: () => subscribeDialog(t.n) }, '+ subscribe') : null),
        h('td', { class: 'num' }, fmt.int(t.pub)),
        h('td', { class: `num${t.unr > 0 ? ' warn-text' : ''}`, title: 'Messages that matched no subscription' }, fmt.int(t.unr)),
        h('td', { class: 'num' }, fmt.rate(t.pr)),
        h('td', null)));
      for (const s of t.subs || []) {
        const q = store.queues.get(s.n);
        const filter = Object.entries(s.f || {}).map(([k, v]) => `${k}=${v}`).join(', ');
        rows.push(h('tr', { class: 'sub-row', 'data-sub': s.n, 'data-topic': t.n },
          h('td', { class: 'name sub' }, '↳ ', h('a', { href: `#/queue/${encodeURIComponent(s.n)}` }, s.n)),
          h('td', null, filter ? h('code', null, filter) : h('span', { class: 'muted' }, 'all messages')),
          h('td', { class: 'num' }, q ? fmt.int(q.pub) : ''),
          h('td'),
          h('td', { class: 'num' }, q ? fmt.rate(q.pr) : ''),
          h('td', { class: 'num' }, q ? fmt.int(q.r) : '')));
      }
    }
    tbody.replaceChildren(...rows);
  }
  return { update, destroy() {} };
}
