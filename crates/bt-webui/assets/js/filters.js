// The sidebar: filters by status, category and tag, with counts, and the text filter.

import { h } from './dom.js';

const DL = new Set(['downloading', 'stalledDL', 'metaDL', 'checkingDL', 'queuedDL', 'forcedDL']);
const UP = new Set(['uploading', 'stalledUP', 'checkingUP', 'queuedUP', 'forcedUP']);
const STOPPED = new Set(['stoppedDL', 'stoppedUP', 'pausedDL', 'pausedUP']);
const moving = (t) => t.dlspeed > 0 || t.upspeed > 0;

/** Status filters in sidebar order: id, label, test. */
export const STATUSES = [
  ['all', 'All', () => true],
  ['downloading', 'Downloading', (t) => DL.has(t.state)],
  ['seeding', 'Seeding', (t) => UP.has(t.state)],
  ['completed', 'Completed', (t) => t.progress >= 1],
  ['running', 'Running', (t) => !STOPPED.has(t.state)],
  ['stopped', 'Stopped', (t) => STOPPED.has(t.state)],
  ['active', 'Active', moving],
  ['inactive', 'Inactive', (t) => !moving(t)],
  ['stalled', 'Stalled', (t) => t.state === 'stalledDL' || t.state === 'stalledUP'],
  ['checking', 'Checking', (t) => t.state?.startsWith('checking')],
  ['errored', 'Errored', (t) => t.state === 'error' || t.state === 'missingFiles'],
];

const ANY = '\u0000any';
const NONE = '';

export class Filters extends EventTarget {
  constructor(root, store) {
    super();
    this.root = root;
    this.store = store;
    this.status = 'all';
    this.category = ANY;
    this.tag = ANY;
    this.text = '';
    this.sections = {};
  }

  /** Whether torrent `t` passes every filter. */
  test(t) {
    return this.passesStatus(t) && this.passesCategory(t) && this.passesTag(t) && this.passesText(t);
  }

  passesStatus(t) { return this.statusTest(t); }

  /** The chosen status filter's test (looked up once, not per torrent). */
  get statusTest() {
    if (this.testFor !== this.status) {
      this.testFor = this.status;
      this.test_ = STATUSES.find((s) => s[0] === this.status)[2];
    }
    return this.test_;
  }
  passesCategory(t) { return this.category === ANY || (t.category ?? '') === this.category; }
  passesTag(t) {
    if (this.tag === ANY) return true;
    const tags = t.tags ? t.tags.split(', ') : [];
    return this.tag === NONE ? tags.length === 0 : tags.includes(this.tag);
  }
  passesText(t) { return !this.text || (t.name ?? '').toLowerCase().includes(this.text); }

  setText(text) {
    this.text = text.trim().toLowerCase();
    this.dispatchEvent(new Event('change'));
  }

  /** The category and tag names, to tell whether the sidebar needs them redrawn. */
  names() {
    return `${[...this.store.categories.keys()].join('\n')}\t${[...this.store.tags].join('\n')}`;
  }

  namesChanged() { return this.names() !== this.namesShown; }

  /** Redraws the sidebar with counts (each count under the other two filters). */
  render() {
    const counts = new Array(STATUSES.length).fill(0);
    const catCounts = new Map();
    const tagCounts = new Map();
    let uncategorized = 0, untagged = 0, catAll = 0, tagAll = 0;
    for (const t of this.store.torrents.values()) {
      const cat = this.passesCategory(t), tag = this.passesTag(t), st = this.passesStatus(t), tx = this.passesText(t);
      if (cat && tag && tx) for (let i = 0; i < STATUSES.length; i++) if (STATUSES[i][2](t)) counts[i]++;
      if (st && tag && tx) {
        catAll++;
        if (t.category) catCounts.set(t.category, (catCounts.get(t.category) ?? 0) + 1);
        else uncategorized++;
      }
      if (st && cat && tx) {
        tagAll++;
        const tags = t.tags ? t.tags.split(', ') : [];
        if (!tags.length) untagged++;
        for (const g of tags) tagCounts.set(g, (tagCounts.get(g) ?? 0) + 1);
      }
    }
    this.namesShown = this.names();
    const categories = [...new Set([...this.store.categories.keys(), ...catCounts.keys()])].sort();
    const tags = [...new Set([...this.store.tags, ...tagCounts.keys()])].sort();
    this.section('status', 'Status', STATUSES.map(([id, label], i) => [id, label, counts[i]]), this.status,
      (id) => { this.status = id; });
    this.section('category', 'Categories',
      [[ANY, 'All', catAll], [NONE, 'Uncategorized', uncategorized], ...categories.map((c) => [c, c, catCounts.get(c) ?? 0])],
      this.category, (id) => { this.category = id; });
    this.section('tag', 'Tags',
      [[ANY, 'All', tagAll], [NONE, 'Untagged', untagged], ...tags.map((g) => [g, g, tagCounts.get(g) ?? 0])],
      this.tag, (id) => { this.tag = id; });
  }

  /** One group of filter buttons; rebuilt only when its entries change. */
  section(key, title, entries, current, choose) {
    let s = this.sections[key];
    const names = entries.map((e) => e[0]).join('\n');
    if (!s || s.names !== names) {
      const list = h('ul', { class: 'filter-list' });
      const buttons = entries.map(([id, label]) => {
        const count = h('span', { class: 'count' });
        const b = h('button', {
          type: 'button', class: 'filter',
          onclick: () => { choose(id); this.render(); this.dispatchEvent(new Event('change')); },
        }, h('span', { class: 'filter-label' }, label), count);
        b.count = count;
        b.filterId = id;
        list.append(h('li', {}, b));
        return b;
      });
      const heading = h('h2', { id: `filter-${key}` }, title);
      const group = h('div', { class: 'filter-group', role: 'group', 'aria-labelledby': heading.id }, heading, list);
      if (s) s.group.replaceWith(group); else this.root.append(group);
      s = this.sections[key] = { group, buttons, names };
    }
    entries.forEach(([id, , n], i) => {
      const b = s.buttons[i];
      b.count.textContent = String(n);
      b.setAttribute('aria-pressed', String(id === current));
    });
  }
}
