// The torrent list's columns: what each shows, how it sorts, how wide it is.

import * as fmt from './format.js';
import { h } from './dom.js';

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
const byText = (key) => (a, b) => collator.compare(a[key] ?? '', b[key] ?? '');
const byNumber = (key) => (a, b) => (a[key] ?? 0) - (b[key] ?? 0);

/** A progress bar cell: role progressbar, aria-valuenow in percent. */
function progressCell() {
  const bar = h('span', { class: 'bar' });
  const track = h('span', { class: 'track' }, bar);
  const label = h('span', { class: 'pct' });
  const el = h('div', {
    class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-label': 'Progress',
  }, track, label);
  el.update = (t) => {
    const pct = Math.floor((t.progress ?? 0) * 1000) / 10;
    if (el.pct === pct && el.tone === t.state) return;
    el.pct = pct;
    el.tone = t.state;
    el.setAttribute('aria-valuenow', String(pct));
    el.dataset.tone = fmt.state(t.state)[1];
    bar.style.width = `${pct}%`;
    label.textContent = `${pct}%`;
  };
  return el;
}

function stateCell() {
  const el = h('span', { class: 'state' });
  el.update = (t) => {
    const [label, tone] = fmt.state(t.state);
    if (el.textContent !== label) el.textContent = label;
    if (el.dataset.tone !== tone) el.dataset.tone = tone;
  };
  return el;
}

/** Each column: key, header label, CSS width, text of a torrent or a cell factory, sort. */
export const COLUMNS = [
  { key: 'name', label: 'Name', width: 'minmax(180px, 1fr)', text: (t) => t.name, sort: byText('name') },
  { key: 'size', label: 'Size', width: '76px', end: true, text: (t) => fmt.bytes(t.size), sort: byNumber('size') },
  { key: 'progress', label: 'Progress', width: '112px', cell: progressCell, sort: byNumber('progress') },
  {
    key: 'state', label: 'Status', width: '104px', cell: stateCell,
    sort: (a, b) => collator.compare(fmt.state(a.state)[0], fmt.state(b.state)[0]),
  },
  { key: 'dlspeed', label: 'Down', width: '84px', end: true, text: (t) => fmt.speed(t.dlspeed), sort: byNumber('dlspeed') },
  { key: 'upspeed', label: 'Up', width: '84px', end: true, text: (t) => fmt.speed(t.upspeed), sort: byNumber('upspeed') },
  { key: 'eta', label: 'ETA', width: '64px', end: true, text: (t) => (t.dlspeed > 0 || t.state === 'downloading' || t.state === 'stalledDL' ? fmt.eta(t.eta) : ''), sort: byNumber('eta') },
  { key: 'ratio', label: 'Ratio', width: '52px', end: true, text: (t) => fmt.ratio(t.ratio), sort: byNumber('ratio') },
  { key: 'category', label: 'Category', width: '88px', text: (t) => t.category, sort: byText('category') },
  { key: 'tags', label: 'Tags', width: '80px', text: (t) => t.tags, sort: byText('tags') },
  { key: 'added_on', label: 'Added', width: '116px', text: (t) => fmt.date(t.added_on), sort: byNumber('added_on') },
];

/** Queue position: the order "Move up/down" changes (seeds, 0, last). */
export const queueSort = (a, b) => ((a.priority || 1e9) - (b.priority || 1e9));
