// Adding torrents: magnet links or URLs, .torrent files (picked or dropped), where they
// go, and, if asked, the choice of files before the download starts.

import { api } from './api.js';
import { attempt, field, h, toast } from './dom.js';
import { FilesTree } from './files-tree.js';

export class AddDialog {
  constructor(dialog, chooser, store) {
    this.dialog = dialog;
    this.chooser = chooser;
    this.store = store;
    this.files = [];
    this.build();
    // Dropping .torrent files anywhere opens the dialog with them.
    addEventListener('dragover', (e) => {
      if (e.dataTransfer?.types.includes('Files')) { e.preventDefault(); document.body.classList.add('dropping'); }
    });
    addEventListener('dragleave', (e) => { if (!e.relatedTarget) document.body.classList.remove('dropping'); });
    addEventListener('drop', (e) => {
      document.body.classList.remove('dropping');
      if (!e.dataTransfer?.files.length) return;
      e.preventDefault();
      if (!this.dialog.open) this.open();
      this.addFiles(e.dataTransfer.files);
    });
  }

  build() {
    this.urls = h('textarea', { name: 'urls', rows: 3, spellcheck: false, placeholder: 'magnet:?xt=urn:btih:…' });
    this.picker = h('input', { type: 'file', multiple: true, accept: '.torrent,application/x-bittorrent', class: 'sr-only',
      onchange: () => { this.addFiles(this.picker.files); this.picker.value = ''; } });
    this.fileList = h('ul', { class: 'chosen-files' });
    const pick = h('label', { class: 'button', for: 'add-picker' }, 'Choose .torrent files…');
    this.picker.id = 'add-picker';
    this.drop = h('div', { class: 'dropzone' }, this.picker, pick, h('span', { class: 'muted' }, ' or drop them here'), this.fileList);
    for (const ev of ['dragover', 'dragenter']) this.drop.addEventListener(ev, (e) => { e.preventDefault(); this.drop.classList.add('over'); });
    this.drop.addEventListener('dragleave', () => this.drop.classList.remove('over'));
    this.drop.addEventListener('drop', (e) => {
      e.preventDefault();
      e.stopPropagation();
      this.drop.classList.remove('over');
      this.addFiles(e.dataTransfer.files);
    });
    this.savePath = h('input', { name: 'savepath', autocomplete: 'off', spellcheck: false });
    this.category = h('select', { name: 'category', onchange: () => {
      const c = this.store.categories.get(this.category.value);
      if (c?.savePath) this.savePath.value = c.savePath;
    } });
    this.stopped = h('input', { type: 'checkbox', name: 'stopped' });
    this.sequential = h('input', { type: 'checkbox', name: 'sequentialDownload' });
    this.choose = h('input', { type: 'checkbox', name: 'choose' });
    this.error = h('p', { class: 'error', role: 'alert' });
    this.submit = h('button', { type: 'submit', class: 'primary' }, 'Add');
    const form = h('form', { class: 'dialog-body', onsubmit: (e) => { e.preventDefault(); this.send(); } },
      h('h2', { id: 'add-title' }, 'Add torrents'),
      field('Magnet link or URL', this.urls, 'One per line: magnet links, info-hashes or http(s) links to .torrent files.'),
      h('div', { class: 'field' }, h('span', { class: 'field-label', id: 'add-files-label' }, 'Torrent files'), this.drop),
      h('div', { class: 'two' }, field('Save path', this.savePath), field('Category', this.category)),
      field('Start stopped', this.stopped),
      field('Sequential download', this.sequential),
      field('Choose files before downloading', this.choose, 'For .torrent files: pick files, then start.'),
      this.error,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => this.dialog.close() }, 'Cancel'), this.submit));
    this.dialog.replaceChildren(form);
  }

  addFiles(list) {
    for (const f of list) {
      if (!this.files.some((g) => g.name === f.name && g.size === f.size)) this.files.push(f);
    }
    this.showFiles();
  }

  showFiles() {
    this.fileList.replaceChildren(...this.files.map((f, i) => h('li', {}, h('span', {}, f.name),
      h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${f.name}`,
        onclick: () => { this.files.splice(i, 1); this.showFiles(); } }, 'Remove'))));
  }

  async open() {
    this.files = [];
    this.showFiles();
    this.urls.value = '';
    this.error.textContent = '';
    const cats = [...this.store.categories.keys()].sort();
    this.category.replaceChildren(h('option', { value: '' }, 'None'), ...cats.map((c) => h('option', { value: c }, c)));
    this.dialog.showModal();
    this.urls.focus();
    const path = await attempt(api.defaultSavePath(), 'Default save path');
    if (path !== undefined && !this.savePath.value) this.savePath.value = path;
  }

  async send() {
    const urls = this.urls.value.split('\n').map((s) => s.trim()).filter(Boolean);
    if (!urls.length && !this.files.length) {
      this.error.textContent = 'Give a magnet link, a URL or a .torrent file.';
      return;
    }
    const choose = this.choose.checked && this.files.length > 0;
    const body = new FormData();
    if (urls.length) body.append('urls', urls.join('\n'));
    for (const f of this.files) body.append('torrents', f, f.name);
    if (this.savePath.value.trim()) body.append('savepath', this.savePath.value.trim());
    if (this.category.value) body.append('category', this.category.value);
    body.append('stopped', String(this.stopped.checked || choose));
    body.append('sequentialDownload', String(this.sequential.checked));
    const before = new Set(this.store.torrents.keys());
    this.submit.disabled = true;
    try {
      const answer = await api.add(body);
      if (answer.trim() === 'Fails.') toast('Already there: nothing was added.', 'info');
      this.dialog.close();
      this.store.refreshSoon();
      if (choose) this.chooseFiles(before, !this.stopped.checked);
    } catch (e) {
      this.error.textContent = e.message;
    } finally {
      this.submit.disabled = false;
    }
  }

  /** Waits for the torrents that were not in `before`, then lets the user pick files. */
  async chooseFiles(before, startAfter) {
    const deadline = Date.now() + 15000;
    let added = [];
    while (Date.now() < deadline) {
      added = [...this.store.torrents.values()].filter((t) => !before.has(t.hash) && t.has_metadata);
      if (added.length) break;
      await new Promise((r) => this.store.addEventListener('update', r, { once: true }));
    }
    for (const t of added) await this.chooseOne(t, startAfter);
  }

  chooseOne(t, startAfter) {
    return new Promise((resolve) => {
      const tree = new FilesTree({
        onPriority: async (ids, prio) => {
          await attempt(api.filePrio(t.hash, ids, prio), 'File priority');
          refresh();
        },
      });
      const refresh = async () => {
        const files = await attempt(api.files(t.hash), 'Files');
        if (files) tree.update(files);
      };
      const done = async (start) => {
        this.chooser.close();
        if (start) await attempt(api.act('start', [t.hash]), 'Start');
        this.store.refreshSoon();
        resolve();
      };
      this.chooser.replaceChildren(h('div', { class: 'dialog-body wide' },
        h('h2', { id: 'choose-title' }, `Choose files: ${t.name}`),
        h('p', { class: 'muted' }, 'Set the files you do not want to Skip.'),
        tree.el,
        h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => done(false) }, 'Keep stopped'),
          h('button', { type: 'button', class: 'primary', onclick: () => done(startAfter) }, startAfter ? 'Start download' : 'Done'))));
      this.chooser.onclose = () => resolve();
      refresh();
      this.chooser.showModal();
    });
  }
}
