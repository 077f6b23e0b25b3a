// The toolbar's bulk actions on the selected torrents.

import { api } from './api.js';
import { attempt } from './dom.js';
import { h } from './dom.js';

const VERBS = { start: 'Start', stop: 'Stop', recheck: 'Recheck', topPrio: 'Move to top',
  increasePrio: 'Move up', decreasePrio: 'Move down', bottomPrio: 'Move to bottom' };
const NO_CATEGORY = '\u0000none';

export class Toolbar {
  constructor(root, { list, store, onDelete, onAdd }) {
    this.root = root;
    this.list = list;
    this.store = store;
    this.buttons = [...root.querySelectorAll('button[data-action]')];
    this.category = root.querySelector('#set-category');
    root.querySelector('#btn-add').addEventListener('click', onAdd);
    for (const b of this.buttons) {
      b.addEventListener('click', () => {
        const hashes = list.selection();
        if (!hashes.length) return;
        if (b.dataset.action === 'delete') onDelete(hashes);
        else this.run(b.dataset.action, hashes);
      });
    }
    this.category.addEventListener('change', async () => {
      const value = this.category.value;
      this.category.value = '';
      if (!value) return;
      const hashes = list.selection();
      await attempt(api.setCategory(hashes, value === NO_CATEGORY ? '' : value), 'Set category');
      store.refreshSoon();
    });
    list.addEventListener('selection', () => this.update());
    this.update();
  }

  async run(verb, hashes) {
    await attempt(api.act(verb, hashes), VERBS[verb]);
    this.store.refreshSoon();
  }

  /** Enables the actions when something is selected. */
  update() {
    const none = this.list.selected.size === 0;
    for (const b of this.buttons) b.disabled = none;
    this.category.disabled = none;
  }

  /** Refreshes the category menu from the store. */
  setCategories(names) {
    const key = names.join('\n');
    if (this.categoryKey === key) return;
    this.categoryKey = key;
    this.category.replaceChildren(
      h('option', { value: '' }, 'Set category…'),
      h('option', { value: NO_CATEGORY }, 'No category'),
      ...names.map((n) => h('option', { value: n }, n)),
    );
  }
}
