// The daemon's public qBittorrent Web API, and nothing else.

const BASE = 'api/v2/';

/** An HTTP error from the API: status and the body's text. */
export class ApiError extends Error {
  constructor(status, text, path) {
    super(text || `HTTP ${status} from ${path}`);
    this.status = status;
  }
}

/** Called with no argument when a request comes back 403 (the session is gone). */
let onForbidden = () => {};
export function setForbiddenHandler(fn) { onForbidden = fn; }

async function call(path, { form, body, query } = {}) {
  let url = BASE + path;
  if (query) url += '?' + new URLSearchParams(query);
  const init = { credentials: 'same-origin' };
  if (form) { init.method = 'POST'; init.body = new URLSearchParams(form); }
  if (body) { init.method = 'POST'; init.body = body; }
  // The first full list was asked for by boot.js while the modules loaded.
  const early = path === 'sync/maindata' && query?.rid === 0 && window.btFirstMaindata;
  window.btFirstMaindata = null;
  const res = await (early || fetch(url, init));
  if (res.status === 403 && path !== 'auth/login') onForbidden();
  if (!res.ok) throw new ApiError(res.status, (await res.text()).trim(), path);
  return res;
}

const json = async (path, opts) => (await call(path, opts)).json();
const text = async (path, opts) => (await call(path, opts)).text();
const hashes = (list) => ({ hashes: list.join('|') });

export const api = {
  /** Resolves to true when the credentials are right. */
  async login(username, password) {
    return (await text('auth/login', { form: { username, password } })) === 'Ok.';
  },
  logout: () => text('auth/logout', { form: {} }),
  maindata: (rid) => json('sync/maindata', { query: { rid } }),
  peers: (hash) => json('sync/torrentPeers', { query: { hash, rid: 0 } }),
  properties: (hash) => json('torrents/properties', { query: { hash } }),
  trackers: (hash) => json('torrents/trackers', { query: { hash } }),
  files: (hash) => json('torrents/files', { query: { hash } }),
  pieceStates: (hash) => json('torrents/pieceStates', { query: { hash } }),
  /** A verb on torrents: start, stop, recheck, topPrio, increasePrio, ... */
  act: (verb, list, extra = {}) => text(`torrents/${verb}`, { form: { ...hashes(list), ...extra } }),
  remove: (list, deleteFiles) => text('torrents/delete', { form: { ...hashes(list), deleteFiles } }),
  setCategory: (list, category) => text('torrents/setCategory', { form: { ...hashes(list), category } }),
  filePrio: (hash, ids, priority) => text('torrents/filePrio', { form: { hash, id: ids.join('|'), priority } }),
  /** `torrents/add` with a multipart body (urls, torrents, savepath, category, ...). */
  add: (formData) => text('torrents/add', { body: formData }),
  defaultSavePath: () => text('app/defaultSavePath'),
  preferences: () => json('app/preferences'),
  setPreferences: (prefs) => text('app/setPreferences', { form: { json: JSON.stringify(prefs) } }),
  toggleAltSpeed: () => text('transfer/toggleSpeedLimitsMode', { form: {} }),
  createCategory: (category, savePath) => text('torrents/createCategory', { form: { category, savePath } }),
  removeCategories: (names) => text('torrents/removeCategories', { form: { categories: names.join('\n') } }),
  version: () => text('app/version'),
};
