// Calls to the server: the dashboard's own endpoints (/ui/...) and the
// Connect JSON API, with the session cookie (never a token in a URL).

// RPCError is a failed call: code is the Connect code ("not_found",
// "unauthenticated", ...) or "http_STATUS", message the server's text.
export class RPCError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

let onUnauthenticated = () => {};

// setUnauthenticatedHandler registers what to do when a call answers
// unauthenticated (the session expired): the app shows the login form.
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

// rpc calls a Connect unary method with a JSON body, e.g.
// rpc('AdminService', 'PurgeQueue', {name: 'orders'}).
export async function rpc(service, method, body = {}) {
  let res;
  try {
    res = await fetch(`/chute.v1.${service}/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new RPCError('unavailable', `server unreachable (${e.message})`, 0);
  }
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!res.ok) {
    const err = new RPCError(data.code || `http_${res.status}`, data.message || data.error || res.statusText, res.status);
    if (err.code === 'unauthenticated' || res.status === 401) onUnauthenticated();
    throw err;
  }
  return data;
}

// getJSON fetches a dashboard endpoint (/ui/api/...).
export async function getJSON(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (res.status === 401) {
    onUnauthenticated();
    throw new RPCError('unauthenticated', 'session expired', 401);
  }
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!res.ok) throw new RPCError(data.code || `http_${res.status}`, data.message || data.error || res.statusText, res.status);
  return data;
}

// session returns /ui/api/session.
export function session() { return getJSON('/ui/api/session'); }

// login posts the token; resolves true on success, false on a wrong token.
export async function login(token) {
  const res = await fetch('/ui/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
    credentials: 'same-origin',
  });
  if (res.status === 401) return false;
  if (!res.ok) {
    let msg = res.statusText;
    try { const d = await res.json(); msg = d.error || d.message || msg; } catch { /* not JSON */ }
    throw new RPCError(`http_${res.status}`, msg, res.status);
  }
  return true;
}

// logout ends the session.
export async function logout() {
  await fetch('/ui/logout', { method: 'POST', credentials: 'same-origin' });
}

// decodeBody turns a base64 body into {text, json, binary, size}: json is
// the parsed value when the body is JSON, binary is true when it is not
// valid UTF-8 (text then holds a hex dump of the first bytes).
export function decodeBody(b64) {
  const raw = atob(b64 || '');
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const hex = Array.from(bytes.slice(0, 64), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return { text: hex + (bytes.length > 64 ? ' …' : ''), json: undefined, binary: true, size: bytes.length };
  }
  let json;
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try { json = JSON.parse(trimmed); } catch { json = undefined; }
  }
  return { text, json, binary: false, size: bytes.length };
}
