// Small DOM helpers: element builder, toast, confirm and form dialogs.

// h builds an element: h('a', {href: '#/', class: 'x'}, 'text', child...).
// Attributes starting with "on" become listeners; null/false ones are skipped.
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// $ is querySelector on document or a root.
export const $ = (sel, root = document) => root.querySelector(sel);

let toastTimer = 0;

// toast shows the outcome of an action in #toast; kind is "ok" or "error".
// Errors stay until the next toast or a click; successes fade after 5 s.
export function toast(msg, kind = 'ok') {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  if (kind !== 'error') toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
}

// confirmAction asks in dialog#confirm. With opts.typeToConfirm the OK
// button stays disabled until the user types that text. Resolves true or false.
export function confirmAction(title, text, opts = {}) {
  const d = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  const input = document.getElementById('confirm-input');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  ok.textContent = opts.okLabel || 'Confirm';
  ok.className = opts.danger === false ? 'btn primary' : 'btn danger';
  const typed = opts.typeToConfirm;
  const label = document.getElementById('confirm-input-label');
  label.hidden = !typed;
  input.value = '';
  ok.disabled = !!typed;
  if (typed) label.firstChild.textContent = `Type "${typed}" to confirm `;
  input.oninput = () => { ok.disabled = input.value !== typed; };
  return new Promise((resolve) => {
    const done = (v) => {
      ok.onclick = cancel.onclick = d.onclose = null;
      if (d.open) d.close();
      resolve(v);
    };
    ok.onclick = (e) => { e.preventDefault(); done(true); };
    cancel.onclick = (e) => { e.preventDefault(); done(false); };
    d.onclose = () => done(false);
    d.showModal();
    (typed ? input : cancel).focus();
  });
}

// formDialog shows a modal dialog with a form built from fields
// [{name, label, value, placeholder, type, help}], and resolves to the
// values (an object of strings) or null when cancelled. submit(values)
// may throw to keep the dialog open; its message is shown in the dialog.
export function formDialog(title, fields, submit, okLabel = 'Save') {
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const inputs = fields.map((f) => {
    const input = f.type === 'textarea'
      ? h('textarea', { name: f.name, rows: 3, placeholder: f.placeholder || '' })
      : h('input', { name: f.name, type: f.type || 'text', placeholder: f.placeholder || '', required: f.required, autocomplete: 'off', spellcheck: 'false' });
    input.value = f.value ?? '';
    return h('label', null, h('span', null, f.label), input, f.help ? h('small', null, f.help) : null);
  });
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const ok = h('button', { type: 'submit', class: 'btn primary' }, okLabel);
  const form = h('form', { method: 'dialog' }, h('h2', null, title), ...inputs, err, h('div', { class: 'dialog-actions' }, cancel, ok));
  const d = h('dialog', { class: 'form-dialog' }, form);
  document.body.append(d);
  return new Promise((resolve) => {
    let result = null;
    d.addEventListener('close', () => { d.remove(); resolve(result); });
    cancel.onclick = () => d.close();
    form.onsubmit = async (e) => {
      e.preventDefault();
      const values = Object.fromEntries(new FormData(form).entries());
      ok.disabled = true;
      try {
        if (submit) await submit(values);
        result = values;
        d.close();
      } catch (ex) {
        err.textContent = ex.message;
        err.hidden = false;
      } finally {
        ok.disabled = false;
      }
    };
    d.showModal();
    const first = form.querySelector('input,textarea');
    if (first) first.focus();
  });
}

// setText sets an element's text only when it changed (keeps the DOM quiet).
export function setText(e, s) {
  if (e.textContent !== s) e.textContent = s;
}

// plural returns "1 message" or "3 messages" (n formatted with separators).
export function plural(n, one, many = `${one}s`) {
  return `${Number(n).toLocaleString('en-US')} ${Number(n) === 1 ? one : many}`;
}
