// Starts the UI: the login when needed, then the store's polling feeding every view.

import { api, setForbiddenHandler } from './api.js';
import { Store } from './store.js';
import { TorrentList } from './list.js';
import { Filters } from './filters.js';
import { Toolbar } from './toolbar.js';
import { AddDialog } from './add-dialog.js';
import { DeleteDialog } from './delete-dialog.js';
import { Details } from './details.js';
import { SettingsDialog } from './settings.js';
import { showLogin } from './login.js';
import { initTheme } from './theme.js';
import { drawSpeedGraph } from './speed-graph.js';
import { attempt, toast } from './dom.js';
import * as fmt from './format.js';

const $ = (id) => document.getElementById(id);
const store = new Store();
const list = new TorrentList($('torrent-grid'));
const filters = new Filters($('sidebar'), store);
const details = new Details($('details'), store);
const deleteDialog = new DeleteDialog($('delete-dialog'), store);
const addDialog = new AddDialog($('add-dialog'), $('choose-dialog'), store);
const settings = new SettingsDialog($('settings-dialog'), store);
const toolbar = new Toolbar($('toolbar'), {
  list, store, onDelete: (hashes) => deleteDialog.open(hashes), onAdd: () => addDialog.open(),
});
const phone = matchMedia('(max-width: 700px)');

/** Filters and sorts the store's torrents into the list. */
function refreshList() {
  const rows = [];
  for (const t of store.torrents.values()) if (filters.test(t)) rows.push(t);
  list.setRows(list.sort(rows));
  const empty = $('list-empty');
  empty.hidden = rows.length > 0;
  if (!rows.length) {
    empty.textContent = store.torrents.size ? 'No torrent matches the filters.' : 'No torrents yet. Add one with “Add torrent”, or drop .torrent files here.';
  }
}

function refreshStatus() {
  const s = store.server;
  $('status-dl').textContent = `↓ ${fmt.speed(s.dl_info_speed, '0 B/s')}${s.dl_rate_limit > 0 ? ` [${fmt.speed(s.dl_rate_limit)}]` : ''}`;
  $('status-ul').textContent = `↑ ${fmt.speed(s.up_info_speed, '0 B/s')}${s.up_rate_limit > 0 ? ` [${fmt.speed(s.up_rate_limit)}]` : ''}`;
  $('status-dl').title = `Downloaded this session: ${fmt.bytes(s.dl_info_data ?? 0)}`;
  $('status-ul').title = `Uploaded this session: ${fmt.bytes(s.up_info_data ?? 0)}`;
  $('status-extra').textContent = `Free: ${fmt.bytes(s.free_space_on_disk ?? 0)} · DHT: ${s.dht_nodes ?? 0} nodes · ${store.torrents.size} torrents`;
  $('btn-alt-speed').setAttribute('aria-pressed', String(!!s.use_alt_speed_limits));
  drawSpeedGraph($('speed-graph'), store.history);
}

let lastCategories = '';
store.addEventListener('update', (e) => {
  const torrentsChanged = e.detail.changed.size > 0 || e.detail.membership;
  if (torrentsChanged) refreshList();
  // After a full list, the sidebar's counts wait a moment: the list paints first.
  if (e.detail.full) setTimeout(() => filters.render(), 0);
  else if (torrentsChanged || filters.namesChanged()) filters.render();
  const cats = [...store.categories.keys()].sort();
  if (cats.join('\n') !== lastCategories) { lastCategories = cats.join('\n'); toolbar.setCategories(cats); }
  refreshStatus();
  if (details.hash && !store.torrents.has(details.hash)) showDetails(null);
  else if (details.hash) details.title.textContent = store.torrents.get(details.hash).name;
});
store.addEventListener('offline', (e) => {
  if (e.detail?.status !== 403) $('status-live').textContent = 'The daemon does not answer.';
  document.body.classList.add('offline');
});
store.addEventListener('online', () => document.body.classList.remove('offline'));

filters.addEventListener('change', refreshList);
list.addEventListener('sort', refreshList);
list.addEventListener('delete', () => deleteDialog.open(list.selection()));
list.addEventListener('selection', () => {
  const sel = list.selection();
  if (sel.length === 1 && !phone.matches) showDetails(sel[0]);
  $('status-live').textContent = sel.length ? `${sel.length} selected` : '';
});
list.addEventListener('activate', (e) => showDetails(e.detail, true));

function showDetails(hash, open = false) {
  details.show(hash);
  if (open) {
    document.body.classList.add('details-open');
    if (phone.matches) details.root.querySelector('[role=tab][aria-selected=true]')?.focus();
  }
}
details.onClose = () => $('torrent-grid').focus();

let searchTimer;
$('search').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => filters.setText(e.target.value), 120);
});
$('btn-settings').addEventListener('click', () => settings.open());
$('btn-alt-speed').addEventListener('click', async () => {
  await attempt(api.toggleAltSpeed(), 'Alternative speed limits');
  store.refreshSoon();
});
function showSidebar(open) {
  document.body.classList.toggle('sidebar-open', open);
  $('toggle-sidebar').setAttribute('aria-expanded', String(open));
  if (open) $('sidebar').querySelector('[aria-pressed=true]')?.focus();
}
$('toggle-sidebar').addEventListener('click', () => showSidebar(!document.body.classList.contains('sidebar-open')));
// On a phone the sidebar covers the list: choosing a filter closes it.
filters.addEventListener('change', () => { if (phone.matches) showSidebar(false); });
$('btn-logout').addEventListener('click', async () => {
  await attempt(api.logout(), 'Log out');
  sessionStorage.removeItem('bt-logged-in');
  location.reload();
});
document.addEventListener('themechange', () => refreshStatus());
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && document.body.classList.contains('sidebar-open')) {
    showSidebar(false);
    $('toggle-sidebar').focus();
    return;
  }
  if (e.target.closest('input, textarea, select, dialog')) return;
  if (e.key === '/' ) { e.preventDefault(); $('search').focus(); }
  if (e.key === 'Escape' && document.body.classList.contains('details-open')) details.close();
});

let loggingIn = null;
setForbiddenHandler(() => {
  if (loggingIn) return;
  store.stop();
  loggingIn = showLogin().then(() => {
    loggingIn = null;
    $('btn-logout').hidden = false;
    sessionStorage.setItem('bt-logged-in', '1');
    start();
  });
});

function start() {
  $('app').hidden = false;
  store.rid = 0;
  store.start();
}

initTheme($('btn-theme'));
details.show(null);
refreshList();
filters.render();
start();
$('btn-logout').hidden = sessionStorage.getItem('bt-logged-in') !== '1';
window.addEventListener('error', (e) => toast(`Error: ${e.message}`));
