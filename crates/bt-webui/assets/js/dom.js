// Building elements without innerHTML: h('button', {type: 'button', onclick}, 'Text').

/** Creates an element with attributes (on* become listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || (v === false && !(k in el))) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** A labelled form field: a label and its control, tied by id. */
let fieldIds = 0;
export function field(label, control, hint) {
  control.id ||= `f${++fieldIds}`;
  const row = h('div', { class: control.type === 'checkbox' ? 'field check' : 'field' });
  const lab = h('label', { for: control.id }, label);
  if (control.type === 'checkbox') row.append(control, lab);
  else row.append(lab, control);
  if (hint) {
    const hintEl = h('small', { id: `${control.id}-hint`, class: 'muted' }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
    row.append(hintEl);
  }
  return row;
}

/** Shows a short message at the bottom of the screen. */
let toastTimer;
export function toast(message, tone = 'error') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.dataset.tone = tone;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

/** Runs an API call, showing its error as a toast; resolves to its result or undefined. */
export async function attempt(promise, what) {
  try {
    return await promise;
  } catch (e) {
    toast(`${what}: ${e.message}`);
    return undefined;
  }
}
