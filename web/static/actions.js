// Admin dialogs shared by several views: create a queue, subscribe a
// queue to a topic.

import { rpc } from './api.js';
import { parseHuman } from './fmt.js';
import { formDialog, toast } from './ui.js';

// parseFilter reads "k=v, k2=v2" into an object; throws on a bad pair.
export function parseFilter(s) {
  const out = {};
  for (const part of String(s || '').split(/[,\n]/)) {
    const p = part.trim();
    if (!p) continue;
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`filter "${p}": write header=value`);
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

// configFromForm builds a QueueConfig (Connect JSON) from the common form
// fields, on top of base (the queue's current configuration, or {}).
export function configFromForm(v, base = {}) {
  const cfg = { ...base };
  const set = (key, raw, conv) => {
    if (raw == null) return;
    const s = String(raw).trim();
    if (s === '') { delete cfg[key]; return; }
    cfg[key] = conv(s);
  };
  set('maxDeliveries', v.maxDeliveries, (s) => {
    const n = Number(s);
    if (!Number.isInteger(n)) throw new Error('max deliveries: a whole number (0: default 10, negative: unlimited)');
    return n;
  });
  const dur = (label) => (s) => {
    const secs = parseHuman(s);
    if (secs == null) throw new Error(`${label}: a duration such as 30s, 5m or 1h`);
    return `${secs}s`;
  };
  set('visibilityTimeout', v.visibilityTimeout, dur('visibility timeout'));
  set('messageTtl', v.messageTtl, dur('message TTL'));
  set('deadLetterQueue', v.deadLetterQueue, (s) => s);
  return cfg;
}

const configFields = (cfg = {}) => [
  { name: 'maxDeliveries', label: 'Max deliveries', value: cfg.maxDeliveries ?? '', placeholder: '10', help: 'Before a message is dead-lettered; negative: unlimited.' },
  { name: 'visibilityTimeout', label: 'Visibility timeout', value: cfg.visibilityTimeout ? cfg.visibilityTimeout : '', placeholder: '30s', help: 'Lease length: 30s, 5m, 1h.' },
  { name: 'messageTtl', label: 'Message TTL', value: cfg.messageTtl ? cfg.messageTtl : '', placeholder: 'none', help: 'Empty: messages never expire.' },
  { name: 'deadLetterQueue', label: 'Dead-letter queue', value: cfg.deadLetterQueue ?? '', placeholder: 'NAME.dlq' },
];

export { configFields };

// createQueue asks for a name and the common settings, then creates the queue.
export async function createQueue(navigate) {
  const v = await formDialog('Create queue', [
    { name: 'name', label: 'Name', required: true, placeholder: 'orders' },
    ...configFields(),
  ], async (vals) => {
    await rpc('AdminService', 'CreateQueue', { name: vals.name.trim(), config: configFromForm(vals) });
  }, 'Create');
  if (v) {
    toast(`Created queue ${v.name.trim()}`);
    if (navigate) navigate(`#/queue/${encodeURIComponent(v.name.trim())}`);
  }
}

// subscribe asks for a topic, a queue name and a filter, then subscribes.
export async function subscribe(topic = '') {
  const v = await formDialog('Subscribe a queue to a topic', [
    { name: 'topic', label: 'Topic', value: topic, required: true, placeholder: 'events' },
    { name: 'name', label: 'Subscription queue', required: true, placeholder: 'events.billing' },
    { name: 'filter', label: 'Filter (headers)', placeholder: 'type=invoice, region=eu', help: 'Only messages whose headers match every pair; empty: all.' },
  ], async (vals) => {
    await rpc('AdminService', 'Subscribe', { topic: vals.topic.trim(), name: vals.name.trim(), filter: parseFilter(vals.filter) });
  }, 'Subscribe');
  if (v) toast(`Subscribed ${v.name.trim()} to ${v.topic.trim()}`);
}
