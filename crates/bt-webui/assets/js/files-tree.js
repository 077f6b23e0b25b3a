// A torrent's files as a folder tree, each file and folder with a priority
// (0 skip, 1 normal, 6 high, 7 maximum); a folder's applies to everything in it.

import { h } from './dom.js';
import * as fmt from './format.js';

export const PRIORITIES = [[0, 'Skip'], [1, 'Normal'], [6, 'High'], [7, 'Maximum']];

/** Folder tree of `files` (the Web API's list: name with '/', size, progress, priority). */
function tree(files) {
  const root = { name: '', path: '', dirs: new Map(), files: [] };
  for (const f of files) {
    const parts = f.name.split('/');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      if (!node.dirs.has(part)) node.dirs.set(part, { name: part, path: node.path + part + '/', dirs: new Map(), files: [] });
      node = node.dirs.get(part);
    }
    node.files.push({ ...f, leaf: parts[parts.length - 1] });
  }
  return root;
}

function all(node) {
  return [...node.files, ...[...node.dirs.values()].flatMap(all)];
}

export class FilesTree {
  /** `onPriority(indexes, priority)` is called when the user changes a priority. */
  constructor({ onPriority }) {
    this.onPriority = onPriority;
    this.collapsed = new Set();
    this.el = h('div', { class: 'files table-wrap', role: 'region', 'aria-label': 'Files', tabIndex: 0 });
    this.key = '';
  }

  /** Shows `files`; rebuilds only when the set of files changed, else updates in place. */
  update(files) {
    const key = files.map((f) => f.name).join('\n');
    if (key !== this.key) { this.key = key; this.build(files); }
    this.refresh(files);
  }

  build(files) {
    this.root = tree(files);
    this.rows = [];
    const body = h('tbody');
    const walk = (node, depth) => {
      for (const dir of [...node.dirs.values()].sort((a, b) => a.name.localeCompare(b.name))) {
        const toggle = h('button', { type: 'button', class: 'twisty', 'aria-expanded': String(!this.collapsed.has(dir.path)),
          'aria-label': `${this.collapsed.has(dir.path) ? 'Expand' : 'Collapse'} ${dir.name}`,
          onclick: () => {
            if (this.collapsed.has(dir.path)) this.collapsed.delete(dir.path); else this.collapsed.add(dir.path);
            this.build(this.files);
            this.refresh(this.files);
          } }, '▸');
        this.addRow(body, dir.name, depth, all(dir), toggle);
        if (!this.collapsed.has(dir.path)) walk(dir, depth + 1);
      }
      for (const f of node.files.sort((a, b) => a.leaf.localeCompare(b.leaf))) this.addRow(body, f.leaf, depth, [f], null);
    };
    walk(this.root, 0);
    this.el.replaceChildren(h('table', { class: 'table files-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col', class: 'end' }, 'Size'),
        h('th', { scope: 'col' }, 'Progress'), h('th', { scope: 'col' }, 'Priority'))),
      body));
  }

  addRow(body, name, depth, members, toggle) {
    const indexes = members.map((f) => f.index);
    const select = h('select', { 'aria-label': `Priority of ${name}`,
      onchange: () => { if (select.value !== '') this.onPriority(indexes, Number(select.value)); } },
    h('option', { value: '', hidden: true }, 'Mixed'),
    ...PRIORITIES.map(([v, label]) => h('option', { value: String(v) }, label)));
    const pct = h('span');
    const inner = h('span', { class: 'name' }, toggle ?? h('span', { class: 'twisty-space', 'aria-hidden': 'true' }), h('span', {}, name));
    inner.style.paddingInlineStart = `${depth * 0.9}rem`;
    const nameCell = h('td', {}, inner);
    const size = h('td', { class: 'end' });
    body.append(h('tr', {}, nameCell, size, h('td', {}, pct), h('td', {}, select)));
    this.rows.push({ indexes, select, pct, size });
  }

  refresh(files) {
    this.files = files;
    const byIndex = new Map(files.map((f) => [f.index, f]));
    for (const r of this.rows) {
      const fs = r.indexes.map((i) => byIndex.get(i)).filter(Boolean);
      const size = fs.reduce((s, f) => s + f.size, 0);
      const done = fs.reduce((s, f) => s + f.size * f.progress, 0);
      const prios = new Set(fs.map((f) => f.priority));
      r.size.textContent = fmt.bytes(size);
      r.pct.textContent = fmt.percent(size ? done / size : 1);
      if (document.activeElement !== r.select) r.select.value = prios.size === 1 ? String([...prios][0]) : '';
    }
  }
}
