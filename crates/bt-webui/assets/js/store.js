// The one copy of the daemon's state, kept by `sync/maindata` deltas. Views listen for
// its events and read it; they never change it themselves.

import { api } from './api.js';

/** How many speed samples the graph keeps (at about 1.5 s each: the last 5 minutes). */
export const HISTORY = 200;

export class Store extends EventTarget {
  constructor() {
    super();
    this.rid = 0;
    /** hash -> the torrent object of the Web API, `hash` included. */
    this.torrents = new Map();
    this.categories = new Map();
    this.tags = new Set();
    this.server = {};
    /** [time ms, download B/s, upload B/s], oldest first. */
    this.history = [];
    /** Bumped when torrents are added or removed, or a field changed. */
    this.version = 0;
    this.timer = 0;
    this.running = false;
  }

  /** Merges one `sync/maindata` answer. */
  apply(d) {
    const changed = new Set();
    let membership = false;
    if (d.full_update) {
      membership = true;
      this.torrents.clear();
      this.categories.clear();
      this.tags.clear();
      this.server = {};
    }
    const torrents = d.torrents ?? {};
    for (const hash in torrents) {
      const fields = torrents[hash];
      const t = this.torrents.get(hash);
      if (t) Object.assign(t, fields);
      else { fields.hash = hash; this.torrents.set(hash, fields); membership = true; }
      changed.add(hash);
    }
    for (const hash of d.torrents_removed ?? []) {
      if (this.torrents.delete(hash)) membership = true;
    }
    for (const [name, c] of Object.entries(d.categories ?? {})) {
      this.categories.set(name, { ...(this.categories.get(name) ?? {}), ...c, name });
    }
    for (const name of d.categories_removed ?? []) this.categories.delete(name);
    for (const tag of d.tags ?? []) this.tags.add(tag);
    for (const tag of d.tags_removed ?? []) this.tags.delete(tag);
    Object.assign(this.server, d.server_state ?? {});
    this.rid = d.rid;
    this.history.push([Date.now(), this.server.dl_info_speed ?? 0, this.server.up_info_speed ?? 0]);
    if (this.history.length > HISTORY) this.history.shift();
    if (changed.size || membership) this.version++;
    this.dispatchEvent(new CustomEvent('update', { detail: { changed, membership, full: !!d.full_update } }));
  }

  /** Polls `sync/maindata` until stopped; `refresh_interval` sets the pace. */
  start() {
    this.running = true;
    this.schedule(0);
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delay);
  }

  async tick() {
    if (!this.running) return;
    if (this.inflight) { this.again = true; return; }
    this.inflight = true;
    this.again = false;
    try {
      this.apply(await api.maindata(this.rid));
      this.dispatchEvent(new Event('online'));
    } catch (e) {
      this.dispatchEvent(new CustomEvent('offline', { detail: e }));
    } finally {
      this.inflight = false;
    }
    if (this.running) this.schedule(this.again ? 0 : this.server.refresh_interval ?? 1500);
  }

  /** Asks for the next delta now (after an action, so its effect shows at once). */
  refreshSoon() {
    if (this.running) this.schedule(150);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }
}
