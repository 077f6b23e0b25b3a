// The torrent list: a virtualised ARIA grid. Only the rows in view exist in the DOM (a
// pool of row elements moved and refilled while scrolling), so 10,000 torrents cost what
// 40 do. Each row is role=row named by the torrent's name; selection is aria-selected.

import { h } from './dom.js';
import { COLUMNS } from './columns.js';

/** Rows drawn beyond the visible ones, above and below. */
const OVERSCAN = 6;
const phone = matchMedia('(max-width: 700px)');

export class TorrentList extends EventTarget {
  constructor(root) {
    super();
    this.root = root;
    this.rows = [];          // torrent objects in view order
    this.index = new Map();  // hash -> position in rows
    this.selected = new Set();
    this.active = null;      // the keyboard cursor's hash
    this.anchor = null;      // where a shift-range starts
    this.sortKey = 'added_on';
    this.sortDesc = false;
    this.pool = [];
    this.frame = 0;
    this.build();
    phone.addEventListener('change', () => this.layout());
    new ResizeObserver(() => this.schedule()).observe(root);
  }

  get rowHeight() { return phone.matches ? 64 : 34; }

  build() {
    const r = this.root;
    r.setAttribute('role', 'grid');
    r.setAttribute('aria-label', 'Torrents');
    r.setAttribute('aria-multiselectable', 'true');
    r.setAttribute('aria-colcount', String(COLUMNS.length + 1));
    r.tabIndex = 0;
    this.headerCells = COLUMNS.map((c) => {
      const button = h('button', { type: 'button', onclick: () => this.sortBy(c.key) }, c.label);
      return h('div', { role: 'columnheader', class: `cell c-${c.key}${c.end ? ' end' : ''}`, 'data-key': c.key }, button);
    });
    this.selectAll = h('input', {
      type: 'checkbox', 'aria-label': 'Select all torrents',
      onchange: (e) => (e.target.checked ? this.selectEvery() : this.setSelection([])),
    });
    const headRow = h('div', { role: 'row', class: 'row head', 'aria-rowindex': '1' },
      h('div', { role: 'columnheader', class: 'cell c-check' }, this.selectAll), ...this.headerCells);
    this.head = h('div', { role: 'rowgroup', class: 'thead' }, headRow);
    this.body = h('div', { role: 'rowgroup', class: 'tbody' });
    r.append(this.head, this.body);
    const widths = ['36px', ...COLUMNS.map((c) => c.width)];
    r.style.setProperty('--columns', widths.join(' '));
    // The narrowest the columns go (a minmax counts its minimum); below it, the grid scrolls sideways.
    r.style.setProperty('--min-width', `${widths.reduce((sum, w) => sum + parseInt(w.replace('minmax(', ''), 10), 0)}px`);
    r.addEventListener('scroll', () => this.schedule(), { passive: true });
    r.addEventListener('keydown', (e) => this.onKey(e));
    // Focus puts the cursor on the first row without selecting it (as Ctrl+arrows move).
    r.addEventListener('focus', () => { if (!this.active && this.rows.length) this.moveTo(0, { ctrlKey: true }); });
    this.body.addEventListener('click', (e) => this.onClick(e));
    this.body.addEventListener('dblclick', (e) => {
      const row = e.target.closest('[role=row]');
      if (row?.hash) this.dispatchEvent(new CustomEvent('activate', { detail: row.hash }));
    });
    this.updateSortHeaders();
  }

  /** Sets the torrents to show, in order; keeps the selection of those still there. */
  setRows(rows) {
    this.rows = rows;
    this.index = new Map(rows.map((t, i) => [t.hash, i]));
    let dropped = false;
    for (const hash of this.selected) {
      if (!this.index.has(hash)) { this.selected.delete(hash); dropped = true; }
    }
    if (this.active && !this.index.has(this.active)) this.active = null;
    this.root.setAttribute('aria-rowcount', String(rows.length + 1));
    this.layout();
    if (dropped) this.emitSelection();
  }

  layout() {
    this.body.style.height = `${this.rows.length * this.rowHeight}px`;
    this.render();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  /** Refills the rows in view; cells write only what changed. */
  render() {
    const rh = this.rowHeight;
    const top = Math.max(0, this.root.scrollTop - this.head.offsetHeight);
    const first = Math.max(0, Math.floor(top / rh) - OVERSCAN);
    const count = Math.ceil(this.root.clientHeight / rh) + 2 * OVERSCAN;
    const last = Math.min(this.rows.length, first + count);
    while (this.pool.length < last - first) this.pool.push(this.makeRow());
    let used = 0;
    for (let i = first; i < last; i++, used++) this.fill(this.pool[used], this.rows[i], i, rh);
    for (let k = used; k < this.pool.length; k++) {
      const row = this.pool[k];
      if (row.isConnected) row.remove();
      row.hash = null;
    }
    this.syncActiveDescendant();
  }

  makeRow() {
    const check = h('input', { type: 'checkbox', tabIndex: -1 });
    const cells = COLUMNS.map((c) => {
      const cell = h('div', { role: 'gridcell', class: `cell c-${c.key}${c.end ? ' end' : ''}` });
      if (c.cell) { cell.inner = c.cell(); cell.append(cell.inner); }
      return cell;
    });
    const row = h('div', { role: 'row', class: 'row' }, h('div', { role: 'gridcell', class: 'cell c-check' }, check), ...cells);
    row.check = check;
    row.cells = cells;
    return row;
  }

  fill(row, t, i, rh) {
    if (!row.isConnected) this.body.append(row);
    if (row.y !== i * rh) { row.y = i * rh; row.style.transform = `translateY(${row.y}px)`; }
    if (row.hash !== t.hash) {
      row.hash = t.hash;
      row.id = `row-${t.hash}`;
      row.setAttribute('aria-rowindex', String(i + 2));
    } else if (row.rowIndex !== i) {
      row.setAttribute('aria-rowindex', String(i + 2));
    }
    row.rowIndex = i;
    if (row.name !== t.name) {
      row.name = t.name;
      row.setAttribute('aria-label', t.name);
      row.check.setAttribute('aria-label', `Select ${t.name}`);
    }
    const sel = this.selected.has(t.hash);
    if (row.sel !== sel) {
      row.sel = sel;
      row.setAttribute('aria-selected', String(sel));
      row.check.checked = sel;
    }
    row.classList.toggle('active', t.hash === this.active);
    COLUMNS.forEach((c, k) => {
      const cell = row.cells[k];
      if (cell.inner) cell.inner.update(t);
      else {
        const text = c.text(t) ?? '';
        if (cell.textContent !== text) { cell.textContent = text; if (c.key === 'name') cell.title = text; }
      }
    });
  }

  syncActiveDescendant() {
    const row = this.active && this.pool.find((r) => r.hash === this.active && r.isConnected);
    if (row) this.root.setAttribute('aria-activedescendant', row.id);
    else this.root.removeAttribute('aria-activedescendant');
  }

  sortBy(key) {
    if (this.sortKey === key) this.sortDesc = !this.sortDesc;
    else { this.sortKey = key; this.sortDesc = ['size', 'dlspeed', 'upspeed', 'ratio', 'added_on', 'progress'].includes(key); }
    this.updateSortHeaders();
    this.dispatchEvent(new Event('sort'));
  }

  updateSortHeaders() {
    for (const cell of this.headerCells) {
      const on = cell.dataset.key === this.sortKey;
      if (on) cell.setAttribute('aria-sort', this.sortDesc ? 'descending' : 'ascending');
      else cell.removeAttribute('aria-sort');
    }
  }

  /** Orders torrents by the current sort column. */
  sort(list) {
    const col = COLUMNS.find((c) => c.key === this.sortKey) ?? COLUMNS[0];
    const dir = this.sortDesc ? -1 : 1;
    return list.sort((a, b) => dir * col.sort(a, b) || (a.hash < b.hash ? -1 : 1));
  }

  onClick(e) {
    const row = e.target.closest('[role=row]');
    if (!row?.hash) return;
    const hash = row.hash;
    if (e.target === row.check) {
      this.toggle(hash);
      this.active = hash;
      this.anchor = hash;
      this.render();
      return;
    }
    if (e.shiftKey && this.anchor) this.selectRange(this.anchor, hash);
    else if (e.ctrlKey || e.metaKey) { this.toggle(hash); this.anchor = hash; }
    else { this.setSelection([hash]); this.anchor = hash; }
    this.active = hash;
    this.render();
    if (phone.matches && !e.shiftKey && !e.ctrlKey && !e.metaKey) {
      this.dispatchEvent(new CustomEvent('activate', { detail: hash }));
    }
  }

  onKey(e) {
    const n = this.rows.length;
    if (!n) return;
    const at = this.active ? this.index.get(this.active) ?? 0 : -1;
    const page = Math.max(1, Math.floor(this.root.clientHeight / this.rowHeight) - 1);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: n - 1, PageDown: at + page, PageUp: at - page };
    if (e.key in moves) {
      e.preventDefault();
      this.moveTo(Math.min(n - 1, Math.max(0, moves[e.key])), e);
    } else if (e.key === ' ' && this.active) {
      e.preventDefault();
      this.toggle(this.active);
      this.render();
    } else if (e.key === 'a' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.selectEvery();
    } else if (e.key === 'Enter' && this.active) {
      e.preventDefault();
      this.dispatchEvent(new CustomEvent('activate', { detail: this.active }));
    } else if (e.key === 'Delete' && this.selected.size) {
      e.preventDefault();
      this.dispatchEvent(new Event('delete'));
    } else if (e.key === 'Escape' && this.selected.size) {
      this.setSelection([]);
    }
  }

  /** Moves the cursor to position `i`: selects it alone, extends (Shift) or only moves (Ctrl). */
  moveTo(i, e) {
    const hash = this.rows[i].hash;
    if (e.shiftKey && this.anchor) this.selectRange(this.anchor, hash);
    else if (!e.ctrlKey) { this.setSelection([hash]); this.anchor = hash; }
    this.active = hash;
    this.scrollToIndex(i);
    this.render();
  }

  scrollToIndex(i) {
    const rh = this.rowHeight, top = i * rh, headH = this.head.offsetHeight;
    const view = this.root.clientHeight - headH;
    if (top < this.root.scrollTop) this.root.scrollTop = top;
    else if (top + rh > this.root.scrollTop + view) this.root.scrollTop = top + rh - view;
  }

  toggle(hash) {
    if (this.selected.has(hash)) this.selected.delete(hash);
    else this.selected.add(hash);
    this.emitSelection();
  }

  selectRange(from, to) {
    const a = this.index.get(from) ?? 0, b = this.index.get(to) ?? 0;
    const [lo, hi] = a < b ? [a, b] : [b, a];
    this.setSelection(this.rows.slice(lo, hi + 1).map((t) => t.hash));
  }

  selectEvery() { this.setSelection(this.rows.map((t) => t.hash)); }

  setSelection(hashes) {
    this.selected = new Set(hashes);
    this.render();
    this.emitSelection();
  }

  emitSelection() {
    const n = this.selected.size;
    this.selectAll.checked = n > 0 && n === this.rows.length;
    this.selectAll.indeterminate = n > 0 && n < this.rows.length;
    this.dispatchEvent(new Event('selection'));
  }

  /** Selected hashes in view order. */
  selection() {
    return [...this.selected].sort((a, b) => this.index.get(a) - this.index.get(b));
  }
}
