// The dashboard's entry point: session and login, the header, hash
// routing between the views, and keyboard shortcuts.

import * as api from './api.js';
import { connect, disconnect, store, subscribe } from './feed.js';
import * as fmt from './fmt.js';
import { h, toast, setText } from './ui.js';
import * as overview from './overview.js';
import * as queue from './queue.js';
import * as dlq from './dlq.js';
import * as alerts from './alerts.js';
import * as topics from './topics.js';

// ctx is what the views get: the session and what it may do.
const ctx = {
  session: null,
  canAdmin: false,
  navigate(hash) { location.hash = hash; },
};

let view = null;
let viewKey = '';

function show(id) {
  for (const s of ['boot', 'login-view', 'app']) document.getElementById(s).hidden = s !== id;
}

async function start() {
  api.setUnauthenticatedHandler(showLogin);
  let s;
  try {
    s = await api.session();
  } catch (e) {
    document.getElementById('boot').textContent = `Cannot reach the server: ${e.message}`;
    return;
  }
  if (!s.loggedIn) {
    showLogin();
    return;
  }
  enter(s);
}

function showLogin() {
  disconnect();
  if (view) { view.destroy(); view = null; viewKey = ''; }
  ctx.session = null;
  show('login-view');
  const tok = document.getElementById('token');
  tok.value = '';
  tok.focus();
}

function enter(s) {
  ctx.session = s;
  ctx.canAdmin = s.role === 'admin' && !s.readOnly;
  document.body.classList.toggle('read-only', !ctx.canAdmin);
  setText(document.getElementById('version'), s.version || '');
  const who = document.getElementById('who');
  who.replaceChildren(h('span', { class: 'who-name' }, s.name || ''), ' ', h('span', { class: `role role-${s.role}` }, s.readOnly ? 'read-only' : s.role));
  document.getElementById('logout').hidden = !s.auth;
  show('app');
  connect(showLogin);
  route();
}

document.getElementById('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = document.getElementById('login-error');
  const tok = document.getElementById('token');
  err.hidden = true;
  try {
    if (!(await api.login(tok.value))) {
      err.textContent = 'Unknown token.';
      err.hidden = false;
      tok.select();
      return;
    }
    tok.value = '';
    enter(await api.session());
  } catch (ex) {
    err.textContent = ex.message;
    err.hidden = false;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await api.logout(); } catch { /* the session is gone either way */ }
  showLogin();
});

const navToggle = document.getElementById('nav-toggle');
navToggle.addEventListener('click', () => {
  const open = navToggle.getAttribute('aria-expanded') !== 'true';
  navToggle.setAttribute('aria-expanded', String(open));
  document.getElementById('nav').classList.toggle('open', open);
});

// route mounts the view the hash names.
function route() {
  if (!ctx.session) return;
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter(Boolean);
  let mod = overview;
  let params = {};
  let nav = 'overview';
  if (parts[0] === 'queue' && parts[1]) {
    mod = queue;
    params = { name: decodeURIComponent(parts.slice(1).join('/')) };
  } else if (parts[0] === 'dlq') {
    mod = dlq;
    nav = 'dlq';
    params = { name: parts[1] ? decodeURIComponent(parts.slice(1).join('/')) : '' };
  } else if (parts[0] === 'alerts') {
    mod = alerts;
    nav = 'alerts';
  } else if (parts[0] === 'topics') {
    mod = topics;
    nav = 'topics';
  }
  const key = hash;
  if (key === viewKey && view) return;
  if (view) view.destroy();
  const main = document.getElementById('main');
  main.replaceChildren();
  viewKey = key;
  view = mod.mount(main, params, ctx);
  if (store.ready) view.update('snapshot', []);
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.getElementById('nav').classList.remove('open');
  navToggle.setAttribute('aria-expanded', 'false');
}

window.addEventListener('hashchange', route);

// The header totals and badges, and the current view, follow the feed.
subscribe((kind, changed) => {
  renderTotals();
  if (view) view.update(kind, changed);
});

function renderTotals() {
  const t = store.totals;
  const el = document.getElementById('totals');
  if (!t) return;
  const item = (label, value, title) => h('span', { class: 'total', title }, h('b', null, value), ' ', label);
  el.replaceChildren(
    item('queues', fmt.int(t.queues), 'Queues'),
    item('ready', fmt.int(t.r), 'Ready messages in all queues'),
    item('in flight', fmt.int(t.f), 'Leased messages in all queues'),
    item('published/s', fmt.rate(t.pr), 'Published per second'),
    item('acked/s', fmt.rate(t.ar), 'Acked per second'),
  );
  const fa = document.getElementById('nav-alerts');
  fa.hidden = !t.firing;
  setText(fa, String(t.firing || ''));
  let dead = 0;
  for (const q of store.queues.values()) if (q.dl && (q.dead || q.r)) dead += q.dead || q.r;
  const nd = document.getElementById('nav-dlq');
  nd.hidden = dead === 0;
  setText(nd, fmt.int(dead));
}

// Keyboard shortcuts: "/" filter, "g o|d|a|t" pages, "?" help.
let pendingG = 0;
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || !ctx.session) return;
  const t = e.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || t.isContentEditable;
  if (typing || document.querySelector('dialog[open]')) return;
  if (pendingG && Date.now() - pendingG < 1500) {
    pendingG = 0;
    const to = { o: '#/', d: '#/dlq', a: '#/alerts', t: '#/topics' }[e.key];
    if (to) {
      e.preventDefault();
      location.hash = to;
    }
    return;
  }
  if (e.key === 'g') {
    pendingG = Date.now();
    return;
  }
  if (e.key === '/') {
    e.preventDefault();
    if (!document.getElementById('filter')) location.hash = '#/';
    requestAnimationFrame(() => document.getElementById('filter')?.focus());
    return;
  }
  if (e.key === '?') {
    e.preventDefault();
    document.getElementById('help').showModal();
  }
});

document.getElementById('toast').addEventListener('click', (e) => { e.currentTarget.hidden = true; });

// Errors nobody caught end up in the toast, not only the console.
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  const err = e.reason;
  if (err && err.code === 'unauthenticated') return;
  toast(err && err.message ? err.message : String(err), 'error');
});

start();
