// The settings dialog: app/preferences in, app/setPreferences out; categories through
// their own endpoints.

import { api } from './api.js';
import { attempt, field, h, toast } from './dom.js';
import { toKiB } from './format.js';

const DAYS = ['Every day', 'Weekdays', 'Weekends', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

const num = (value, attrs = {}) => h('input', { type: 'number', min: '0', value: String(value ?? 0), ...attrs });
const check = (on) => h('input', { type: 'checkbox', checked: !!on });
const pad = (n) => String(n ?? 0).padStart(2, '0');

export class SettingsDialog {
  constructor(dialog, store) {
    this.dialog = dialog;
    this.store = store;
  }

  async open() {
    const p = await attempt(api.preferences(), 'Settings');
    if (!p) return;
    const f = {
      dl: num(toKiB(p.dl_limit)), up: num(toKiB(p.up_limit)),
      altDl: num(toKiB(p.alt_dl_limit)), altUp: num(toKiB(p.alt_up_limit)),
      sched: check(p.scheduler_enabled),
      from: h('input', { type: 'time', value: `${pad(p.schedule_from_hour)}:${pad(p.schedule_from_min)}` }),
      to: h('input', { type: 'time', value: `${pad(p.schedule_to_hour)}:${pad(p.schedule_to_min)}` }),
      days: h('select', {}, DAYS.map((d, i) => h('option', { value: String(i), selected: i === p.scheduler_days }, d))),
      queue: check(p.queueing_enabled),
      maxDl: num(p.max_active_downloads, { min: '-1' }), maxUp: num(p.max_active_uploads, { min: '-1' }),
      maxAll: num(p.max_active_torrents, { min: '-1' }),
      port: num(p.listen_port, { max: '65535' }), conn: num(p.max_connec), connT: num(p.max_connec_per_torrent),
      dht: check(p.dht),
      savePath: h('input', { value: p.save_path ?? '', spellcheck: false }),
      watch: h('input', { value: Object.keys(p.scan_dirs ?? {})[0] ?? '', spellcheck: false }),
      ratioOn: check(p.max_ratio_enabled), ratio: num(Math.max(0, p.max_ratio ?? 0), { step: 'any' }),
      user: h('input', { value: p.web_ui_username ?? '', autocomplete: 'username' }),
      password: h('input', { type: 'password', autocomplete: 'new-password', minLength: 6 }),
    };
    const error = h('p', { class: 'error', role: 'alert' });
    const cats = h('div', { class: 'categories' });
    const form = h('form', { class: 'dialog-body wide', onsubmit: (e) => { e.preventDefault(); this.save(f, error); } },
      h('h2', { id: 'settings-title' }, 'Settings'),
      h('div', { class: 'settings-grid' },
        h('fieldset', {}, h('legend', {}, 'Speed limits (KiB/s, 0 for none)'),
          h('div', { class: 'two' }, field('Download limit', f.dl), field('Upload limit', f.up)),
          h('div', { class: 'two' }, field('Alternative download limit', f.altDl), field('Alternative upload limit', f.altUp)),
          field('Use the alternative limits on a schedule', f.sched),
          h('div', { class: 'three' }, field('From', f.from), field('To', f.to), field('Days', f.days))),
        h('fieldset', {}, h('legend', {}, 'Queueing'),
          field('Queue torrents', f.queue),
          h('div', { class: 'three' }, field('Active downloads', f.maxDl), field('Active uploads', f.maxUp), field('Active torrents', f.maxAll)),
          h('legend', { class: 'sub' }, 'Seeding'),
          field('Stop seeding at a ratio', f.ratioOn), field('Ratio', f.ratio)),
        h('fieldset', {}, h('legend', {}, 'Connections'),
          field('Listening port', f.port),
          h('div', { class: 'two' }, field('Connections in all', f.conn), field('Connections per torrent', f.connT)),
          field('DHT (find peers without trackers)', f.dht)),
        h('fieldset', {}, h('legend', {}, 'Downloads'),
          field('Default save path', f.savePath),
          field('Watch folder', f.watch, '.torrent files put here are added; empty for none.')),
        h('fieldset', {}, h('legend', {}, 'Categories'), cats),
        h('fieldset', {}, h('legend', {}, 'Web UI login'),
          field('Username', f.user), field('New password', f.password, 'At least 6 characters; empty keeps the current one.'))),
      error,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => this.dialog.close() }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary' }, 'Save')));
    this.dialog.replaceChildren(form);
    this.renderCategories(cats);
    this.dialog.showModal();
  }

  renderCategories(box) {
    const name = h('input', { autocomplete: 'off' });
    const path = h('input', { autocomplete: 'off', spellcheck: false });
    const rows = [...this.store.categories.values()].sort((a, b) => a.name.localeCompare(b.name)).map((c) =>
      h('li', {}, h('span', { class: 'cat-name' }, c.name), h('span', { class: 'muted cat-path' }, c.savePath || 'default folder'),
        h('button', { type: 'button', class: 'link', 'aria-label': `Remove category ${c.name}`, onclick: async () => {
          await attempt(api.removeCategories([c.name]), 'Remove category');
          await this.reloadCategories(box);
        } }, 'Remove')));
    box.replaceChildren(
      rows.length ? h('ul', { class: 'cat-list' }, rows) : h('p', { class: 'muted' }, 'No categories yet.'),
      h('div', { class: 'two' }, field('New category', name), field('Its save path', path)),
      h('button', { type: 'button', onclick: async () => {
        if (!name.value.trim()) return;
        await attempt(api.createCategory(name.value.trim(), path.value.trim()), 'Create category');
        await this.reloadCategories(box);
      } }, 'Create category'));
  }

  async reloadCategories(box) {
    this.store.refreshSoon();
    await new Promise((r) => this.store.addEventListener('update', r, { once: true }));
    this.renderCategories(box);
  }

  async save(f, error) {
    const time = (input) => (input.value || '00:00').split(':').map(Number);
    const [fh, fm] = time(f.from), [th, tm] = time(f.to);
    const kib = (input) => Math.max(0, Number(input.value) || 0) * 1024;
    const prefs = {
      dl_limit: kib(f.dl), up_limit: kib(f.up), alt_dl_limit: kib(f.altDl), alt_up_limit: kib(f.altUp),
      scheduler_enabled: f.sched.checked, schedule_from_hour: fh, schedule_from_min: fm,
      schedule_to_hour: th, schedule_to_min: tm, scheduler_days: Number(f.days.value),
      queueing_enabled: f.queue.checked, max_active_downloads: Number(f.maxDl.value),
      max_active_uploads: Number(f.maxUp.value), max_active_torrents: Number(f.maxAll.value),
      listen_port: Number(f.port.value), max_connec: Number(f.conn.value), max_connec_per_torrent: Number(f.connT.value),
      dht: f.dht.checked, save_path: f.savePath.value.trim(),
      scan_dirs: f.watch.value.trim() ? { [f.watch.value.trim()]: 1 } : {},
      max_ratio_enabled: f.ratioOn.checked, max_ratio: Number(f.ratio.value),
      web_ui_username: f.user.value.trim(),
    };
    if (f.password.value) prefs.web_ui_password = f.password.value;
    try {
      await api.setPreferences(prefs);
      this.dialog.close();
      toast('Settings saved.', 'info');
      this.store.refreshSoon();
    } catch (e) {
      error.textContent = e.message;
    }
  }
}
