// Asks before deleting torrents, and whether their files go too.

import { api } from './api.js';
import { attempt, h } from './dom.js';

export class DeleteDialog {
  constructor(dialog, store) {
    this.dialog = dialog;
    this.store = store;
  }

  /** Opens the dialog for `hashes`. */
  open(hashes) {
    const names = hashes.map((x) => this.store.torrents.get(x)?.name ?? x);
    const withData = h('input', { type: 'checkbox', id: 'delete-files' });
    const shown = names.slice(0, 5).map((n) => h('li', {}, n));
    if (names.length > 5) shown.push(h('li', { class: 'muted' }, `and ${names.length - 5} more`));
    const form = h('form', { method: 'dialog', class: 'dialog-body' },
      h('h2', { id: 'delete-title' }, hashes.length === 1 ? 'Delete this torrent?' : `Delete ${hashes.length} torrents?`),
      h('ul', { class: 'names' }, shown),
      h('div', { class: 'field check' }, withData, h('label', { for: 'delete-files' }, 'Also delete the downloaded files')),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => this.dialog.close() }, 'Cancel'),
        h('button', { type: 'submit', class: 'danger primary', value: 'delete' }, 'Delete')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      this.dialog.close();
      await attempt(api.remove(hashes, withData.checked), 'Delete');
      this.store.refreshSoon();
    });
    this.dialog.replaceChildren(form);
    this.dialog.showModal();
  }
}
