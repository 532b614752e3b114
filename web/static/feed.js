// The live feed: one EventSource on /ui/api/feed, applied to a store that
// the views read. See docs/dashboard.md, "The feed".

import { session } from './api.js';

// store holds the latest state: queues by name, topics, alerts, totals, and
// t, the server time (UNIX ms) of the latest event.
export const store = {
  queues: new Map(),
  topics: [],
  alerts: [],
  totals: null,
  t: 0,
  ready: false,
};

window.__chute = { events: 0 };

const listeners = new Set();

// subscribe registers fn(kind, changed) called after every event applied;
// kind is "snapshot" or "delta", changed the queue rows in the event.
// It returns a function that unsubscribes.
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let es = null;
let retryTimer = 0;
let retryDelay = 1000;
let onLoggedOut = () => {};
let offlineTimer = 0;
const OFFLINE_AFTER = 5000; // ms of failed reconnects before "offline"

function stopOfflineTimer() {
  clearTimeout(offlineTimer);
  offlineTimer = 0;
}

const live = () => document.getElementById('live');

function setLive(state) {
  const el = live();
  el.dataset.state = state;
  el.querySelector('.live-label').textContent = { live: 'live', connecting: 'connecting…', offline: 'offline' }[state];
  el.title = { live: 'Updating live from the server', connecting: 'Connecting to the live feed', offline: 'The live feed is down; retrying' }[state];
}

function apply(kind, ev) {
  let d;
  try { d = JSON.parse(ev.data); } catch { return; }
  if (kind === 'snapshot') {
    store.queues = new Map();
  }
  for (const q of d.queues || []) store.queues.set(q.n, q);
  for (const n of d.removed || []) store.queues.delete(n);
  store.topics = d.topics || [];
  store.alerts = d.alerts || [];
  store.totals = d.totals || null;
  store.t = d.t || Date.now();
  store.ready = true;
  window.__chute.events++;
  retryDelay = 1000;
  stopOfflineTimer();
  setLive('live');
  for (const fn of listeners) {
    try { fn(kind, d.queues || []); } catch (e) { console.error(e); }
  }
}

// connect opens the feed; onOut is called when the session turns out to
// have ended (the feed is refused and /ui/api/session says logged out).
export function connect(onOut) {
  onLoggedOut = onOut || onLoggedOut;
  disconnect();
  openFeed('connecting');
}

// openFeed opens the EventSource, showing state until it is live.
function openFeed(state) {
  setLive(state);
  es = new EventSource('/ui/api/feed');
  es.addEventListener('snapshot', (ev) => apply('snapshot', ev));
  es.addEventListener('delta', (ev) => apply('delta', ev));
  es.onopen = () => {
    stopOfflineTimer();
    setLive('live');
  };
  es.onerror = () => {
    if (!es) return;
    if (es.readyState === EventSource.CONNECTING) {
      // The browser retries by itself; after a while without success the
      // server counts as offline (the browser keeps retrying).
      if (live().dataset.state !== 'offline') setLive('connecting');
      if (!offlineTimer) {
        offlineTimer = setTimeout(() => {
          offlineTimer = 0;
          if (es && es.readyState !== EventSource.OPEN) setLive('offline');
        }, OFFLINE_AFTER);
      }
      return;
    }
    // Closed: refused (e.g. 401) or not an event stream. Find out why.
    setLive('offline');
    es.close();
    es = null;
    checkAndRetry();
  };
}

async function checkAndRetry() {
  try {
    const s = await session();
    if (!s.loggedIn) {
      onLoggedOut();
      return;
    }
  } catch {
    // The server is unreachable: retry below.
  }
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => openFeed('offline'), retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

// disconnect closes the feed and stops retrying.
export function disconnect() {
  clearTimeout(retryTimer);
  stopOfflineTimer();
  if (es) {
    es.close();
    es = null;
  }
  setLive('offline');
}
