// How numbers read: sizes, speeds, durations, dates, states.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB". */
export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '–';
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}

/** Bytes per second, empty for zero (a quiet list reads better). */
export function speed(n, zero = '') {
  return n > 0 ? `${bytes(n)}/s` : zero;
}

/** Seconds left, qBittorrent's 8640000 meaning "never". */
export function eta(s) {
  if (!(s > 0) || s >= 8640000) return s >= 8640000 ? '∞' : '';
  return duration(s);
}

/** 3700 -> "1h 1m". */
export function duration(s) {
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function ratio(r) {
  if (r >= 9999) return '∞';
  return (r ?? 0).toFixed(2);
}

export function percent(p) {
  return `${Math.floor((p ?? 0) * 1000) / 10}%`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
/** Unix seconds -> local date and time; empty for none. */
export function date(t) {
  return t > 0 ? dateFmt.format(new Date(t * 1000)) : '';
}

/** qBittorrent's state strings, as a person reads them, and a tone for the colour. */
const STATES = {
  downloading: ['Downloading', 'dl'], forcedDL: ['Downloading', 'dl'], metaDL: ['Fetching metadata', 'dl'],
  stalledDL: ['Stalled', 'stalled'], queuedDL: ['Queued', 'queued'], checkingDL: ['Checking', 'checking'],
  stoppedDL: ['Stopped', 'stopped'], pausedDL: ['Stopped', 'stopped'],
  uploading: ['Seeding', 'ul'], forcedUP: ['Seeding', 'ul'], stalledUP: ['Seeding', 'seed'],
  queuedUP: ['Queued', 'queued'], checkingUP: ['Checking', 'checking'],
  stoppedUP: ['Completed', 'done'], pausedUP: ['Completed', 'done'],
  checkingResumeData: ['Checking', 'checking'], moving: ['Moving', 'checking'],
  error: ['Error', 'error'], missingFiles: ['Missing files', 'error'],
};
export function state(s) {
  return STATES[s] ?? [s ?? '', 'stopped'];
}

/** Kibibytes per second as a limit field shows it (0 = none). */
export const toKiB = (b) => (b > 0 ? Math.round(b / 1024) : 0);
