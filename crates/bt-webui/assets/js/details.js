// The details pane of one torrent: general, trackers, peers, files and the piece map,
// refreshed every 2 s while open.

import { api } from './api.js';
import { attempt, h } from './dom.js';
import * as fmt from './format.js';
import { FilesTree } from './files-tree.js';

const TABS = [['general', 'General'], ['trackers', 'Trackers'], ['peers', 'Peers'], ['files', 'Files'], ['pieces', 'Pieces']];
const TRACKER_STATUS = ['Disabled', 'Not contacted', 'Working', 'Updating', 'Not working'];

function table(label, headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted empty-tab' }, empty);
  // Focusable, so a table wider than the screen scrolls from the keyboard too.
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabIndex: 0 }, h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, headers.map(([label, end]) => h('th', { scope: 'col', class: end ? 'end' : '' }, label)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) => h('td', { class: headers[i][1] ? 'end' : '' }, c)))))));
}

export class Details {
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.hash = null;
    this.tab = 'general';
    this.timer = 0;
    this.files = new FilesTree({
      onPriority: async (ids, prio) => {
        await attempt(api.filePrio(this.hash, ids, prio), 'File priority');
        this.load();
      },
    });
    this.build();
  }

  build() {
    this.title = h('h2', { id: 'details-title', class: 'details-title' });
    this.tabs = TABS.map(([id, label]) => h('button', {
      type: 'button', role: 'tab', id: `tab-${id}`, 'aria-controls': `panel-${id}`,
      onclick: () => this.select(id), onkeydown: (e) => this.tabKey(e),
    }, label));
    this.panels = Object.fromEntries(TABS.map(([id]) => [id,
      h('div', { role: 'tabpanel', id: `panel-${id}`, 'aria-labelledby': `tab-${id}`, tabIndex: 0, class: 'panel', hidden: true })]));
    const close = h('button', { type: 'button', class: 'icon-only close', 'aria-label': 'Close details', onclick: () => this.close() },
      h('span', { 'aria-hidden': 'true' }, '×'));
    this.root.setAttribute('aria-labelledby', 'details-title');
    this.root.append(
      h('div', { class: 'details-head' }, this.title,
        h('div', { role: 'tablist', 'aria-label': 'Details', class: 'tabs' }, this.tabs), close),
      ...Object.values(this.panels));
    this.select(this.tab, false);
  }

  tabKey(e) {
    const i = TABS.findIndex(([id]) => id === this.tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const id = TABS[(next + TABS.length) % TABS.length][0];
    this.select(id);
    this.tabs.find((t) => t.id === `tab-${id}`).focus();
  }

  select(id, load = true) {
    this.tab = id;
    for (const t of this.tabs) {
      const on = t.id === `tab-${id}`;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
    }
    for (const [pid, panel] of Object.entries(this.panels)) panel.hidden = pid !== id;
    if (load) this.load();
  }

  /** Shows torrent `hash` (null: the pane says so). */
  show(hash, { tab } = {}) {
    if (tab) this.select(tab, false);
    if (hash !== this.hash) {
      this.hash = hash;
      for (const p of Object.values(this.panels)) p.replaceChildren();
      this.files.key = '';
    }
    this.root.hidden = false;
    this.root.classList.toggle('none', !hash);
    this.load();
  }

  close() {
    this.root.classList.remove('open');
    document.body.classList.remove('details-open');
    this.onClose?.();
  }

  async load() {
    clearTimeout(this.timer);
    const hash = this.hash;
    const t = hash && this.store.torrents.get(hash);
    this.title.textContent = t ? t.name : 'Details';
    if (!t) {
      this.panels[this.tab].replaceChildren(h('p', { class: 'muted empty-tab' }, 'Select a torrent to see its details.'));
      return;
    }
    const panel = this.panels[this.tab];
    try {
      const content = await this[`load_${this.tab}`](hash, t);
      if (hash === this.hash && content && panel.firstChild !== content) panel.replaceChildren(content);
    } catch (e) {
      if (hash === this.hash) panel.replaceChildren(h('p', { class: 'error' }, e.message));
    }
    if (!this.root.hidden && hash === this.hash) this.timer = setTimeout(() => this.load(), 2000);
  }

  async load_general(hash, t) {
    const p = await api.properties(hash);
    const rows = [
      ['Status', fmt.state(t.state)[0]], ['Progress', fmt.percent(t.progress)], ['Size', fmt.bytes(t.size)],
      ['Downloaded', `${fmt.bytes(p.total_downloaded)} (${fmt.bytes(p.total_downloaded_session)} this session)`],
      ['Uploaded', `${fmt.bytes(p.total_uploaded)} (${fmt.bytes(p.total_uploaded_session)} this session)`],
      ['Ratio', fmt.ratio(p.share_ratio)], ['Download speed', fmt.speed(p.dl_speed, '0 B/s')],
      ['Upload speed', fmt.speed(p.up_speed, '0 B/s')], ['ETA', fmt.eta(p.eta) || '–'],
      ['Connections', `${p.nb_connections} (limit ${p.nb_connections_limit})`],
      ['Pieces', p.pieces_num > 0 ? `${p.pieces_have} of ${p.pieces_num} × ${fmt.bytes(p.piece_size)}` : 'no metadata yet'],
      ['Save path', p.save_path], ['Category', t.category || '–'], ['Tags', t.tags || '–'],
      ['Added', fmt.date(p.addition_date)], ['Completed', fmt.date(p.completion_date) || '–'],
      ['Time active', fmt.duration(p.time_elapsed ?? 0)], ['Info-hash', hash],
      ['Created by', p.created_by || '–'], ['Comment', p.comment || '–'],
    ];
    return h('dl', { class: 'props' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
  }

  async load_trackers(hash) {
    const list = await api.trackers(hash);
    return table('Trackers', [['URL'], ['Status'], ['Peers', true], ['Seeds', true], ['Leeches', true], ['Message']],
      list.map((tr) => [tr.url, TRACKER_STATUS[tr.status] ?? String(tr.status), String(tr.num_peers),
        String(tr.num_seeds), String(tr.num_leeches), tr.msg ?? '']), 'No trackers.');
  }

  async load_peers(hash) {
    const d = await api.peers(hash);
    const peers = Object.entries(d.peers ?? {}).sort((a, b) => (b[1].dl_speed + b[1].up_speed) - (a[1].dl_speed + a[1].up_speed));
    return table('Peers', [['Address'], ['Client'], ['Flags'], ['Progress', true], ['Down', true], ['Up', true], ['Downloaded', true], ['Uploaded', true]],
      peers.map(([addr, p]) => [addr, p.client ?? '', p.flags ?? '', fmt.percent(p.progress), fmt.speed(p.dl_speed, '0'),
        fmt.speed(p.up_speed, '0'), fmt.bytes(p.downloaded), fmt.bytes(p.uploaded)]), 'Not connected to any peer.');
  }

  async load_files(hash) {
    const list = await api.files(hash);
    if (!list.length) return h('p', { class: 'muted empty-tab' }, 'The file list comes with the metadata.');
    this.files.update(list);
    return this.files.el;
  }

  async load_pieces(hash) {
    const states = await api.pieceStates(hash);
    let canvas = this.panels.pieces.querySelector('canvas');
    let caption = this.panels.pieces.querySelector('p');
    const box = canvas?.parentElement ?? h('div', { class: 'pieces' },
      canvas = h('canvas', { role: 'img', height: 48 }),
      caption = h('p', { class: 'muted' }),
      h('p', { class: 'legend' }, h('span', { class: 'swatch have' }), 'Have ', h('span', { class: 'swatch partial' }), 'Downloading ',
        h('span', { class: 'swatch missing' }), 'Missing'));
    const have = states.filter((s) => s === 2).length, partial = states.filter((s) => s === 1).length;
    const text = states.length ? `${have} of ${states.length} pieces, ${partial} downloading` : 'No metadata yet.';
    caption.textContent = text;
    canvas.setAttribute('aria-label', `Piece map: ${text}`);
    requestAnimationFrame(() => drawPieces(canvas, states));
    return box;
  }
}

/** Draws one column of colour per slice of pieces: the best state wins only if all share it. */
function drawPieces(canvas, states) {
  const width = Math.max(100, Math.floor(canvas.clientWidth * devicePixelRatio));
  const height = Math.floor(48 * devicePixelRatio);
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext('2d');
  const css = getComputedStyle(canvas);
  const colors = [css.getPropertyValue('--piece-missing'), css.getPropertyValue('--piece-partial'), css.getPropertyValue('--piece-have')];
  ctx.fillStyle = colors[0];
  ctx.fillRect(0, 0, width, height);
  const n = states.length;
  if (!n) return;
  for (let x = 0; x < width; x++) {
    const from = Math.floor((x * n) / width), to = Math.max(from + 1, Math.floor(((x + 1) * n) / width));
    let have = 0, partial = 0;
    for (let i = from; i < to; i++) { if (states[i] === 2) have++; else if (states[i] === 1) partial++; }
    if (partial) ctx.fillStyle = colors[1];
    else if (have === to - from) ctx.fillStyle = colors[2];
    else if (have) { ctx.globalAlpha = 0.35 + 0.65 * (have / (to - from)); ctx.fillStyle = colors[2]; }
    else continue;
    ctx.fillRect(x, 0, 1, height);
    ctx.globalAlpha = 1;
  }
}
