// `cargo xtask bench webui`: each web UI in the plan, holding N torrents, in Debian's
// Chromium at 1280x800. Measured: the time from navigation to the first paint of a row of
// the torrent list, and the longest frame while the list is scrolled from top to bottom
// (a page of rows per frame; the gaps between animation frames, and the Long Animation
// Frames the browser reports). Prints one line per step and, last, the figures as JSON.

import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (line) => console.log(`bench webui: ${line}`);

/** Adds `n` stopped magnet links (fixed names and hashes) through the Web API. */
async function fill(base, n) {
  const batch = 500;
  for (let from = 0; from < n; from += batch) {
    const urls = [];
    for (let i = from; i < Math.min(n, from + batch); i++) {
      const hash = createHash('sha1').update(`bt webui bench ${i}`).digest('hex');
      urls.push(`magnet:?xt=urn:btih:${hash}&dn=bench-torrent-${String(i).padStart(5, '0')}`);
    }
    const body = new URLSearchParams({ urls: urls.join('\n'), stopped: 'true', paused: 'true' });
    const res = await fetch(new URL('api/v2/torrents/add', base), { method: 'POST', body });
    if (!res.ok) throw new Error(`torrents/add: HTTP ${res.status}: ${await res.text()}`);
  }
  const deadline = Date.now() + 600000;
  for (;;) {
    const list = await (await fetch(new URL('api/v2/torrents/info', base))).json();
    if (list.length >= n) return list.length;
    if (Date.now() > deadline) throw new Error(`only ${list.length} of ${n} torrents after 600 s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Before any script of the page: note when the first row is painted, and long frames. */
function instrument(rowSelector) {
  window.__bench = { firstRow: null, loaf: [] };
  const seen = () => {
    if (window.__bench.firstRow !== null || !document.querySelector(rowSelector)) return false;
    // The frame that shows the row: after the next animation frame's paint.
    requestAnimationFrame(() => setTimeout(() => { window.__bench.firstRow ??= performance.now(); }, 0));
    return true;
  };
  new MutationObserver((_, obs) => { if (seen()) obs.disconnect(); })
    .observe(document, { childList: true, subtree: true });
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__bench.loaf.push([e.startTime, e.duration]); })
      .observe({ type: 'long-animation-frame', buffered: true });
  } catch { /* no Long Animation Frames API */ }
}

/** Scrolls the list from top to bottom, a page per frame; the frame gaps and long frames. */
async function scroll(page, scrollerSelector, rowSelector) {
  return page.evaluate(([sel, rowSel]) => new Promise((resolve) => {
    let el = sel && document.querySelector(sel);
    if (!el) {
      el = document.querySelector(rowSel);
      while (el && !(el.scrollHeight > el.clientHeight + 10 && getComputedStyle(el).overflowY !== 'visible')) el = el.parentElement;
    }
    if (!el) { resolve({ error: 'no scrolling list found' }); return; }
    const start = performance.now();
    const gaps = [];
    let last = start;
    el.scrollTop = 0;
    const frame = (t) => {
      gaps.push(t - last);
      last = t;
      if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) {
        const loaf = window.__bench.loaf.filter(([s]) => s >= start).map(([, d]) => d);
        resolve({ frames: gaps.length, longest_gap_ms: Math.max(...gaps.slice(1)), longest_loaf_ms: loaf.length ? Math.max(...loaf) : 0,
          long_frames: loaf.length, scroll_height: el.scrollHeight, took_ms: t - start });
        return;
      }
      el.scrollTop += el.clientHeight;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }), [scrollerSelector, rowSelector]);
}

const results = [];
const profile = mkdtempSync(join(plan.profile_parent ?? tmpdir(), 'chromium-bench-'));
const browser = await chromium.launch({
  executablePath: plan.chromium ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  for (const target of plan.targets) {
    log(`${target.name}: adding ${plan.torrents} torrents`);
    const t0 = Date.now();
    const count = await fill(target.base, plan.torrents);
    log(`${target.name}: ${count} torrents in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const runs = [];
    for (let run = 0; run < (plan.runs ?? 3); run++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.addInitScript(instrument, target.row);
      await page.goto(target.base);
      await page.waitForFunction(() => window.__bench.firstRow !== null, null, { timeout: 120000 });
      const firstRow = await page.evaluate(() => window.__bench.firstRow);
      // The list complete: as many rows known as torrents (virtualised lists say so in aria-rowcount).
      await page.waitForTimeout(1500);
      const scrolled = await scroll(page, target.scroller, target.row);
      runs.push({ first_row_paint_ms: Math.round(firstRow), ...scrolled });
      log(`${target.name} run ${run + 1}: first row painted at ${Math.round(firstRow)} ms; scroll: ${JSON.stringify(scrolled)}`);
      await context.close();
    }
    const best = (k) => Math.min(...runs.map((r) => r[k]));
    const median = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    results.push({ name: target.name, torrents: count, runs,
      median_first_row_paint_ms: median('first_row_paint_ms'), best_first_row_paint_ms: best('first_row_paint_ms'),
      median_longest_gap_ms: median('longest_gap_ms'), median_longest_loaf_ms: median('longest_loaf_ms') });
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ torrents: plan.torrents, results }));
