// The bt web UI in a real browser: Debian's Chromium driven by playwright-core, checked by
// axe-core. `cargo xtask fixture-test bt-webui` starts `bt daemon` and libtorrent seeders,
// writes a plan (JSON) and runs `node webui-tests/webui.test.mjs PLAN`. Elements are found
// the way a person finds them: by role and accessible name.
//
// It prints one line per step and ends with `webui: ok`; any failure throws (exit 1).

import { readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const SCHEMES = ['light', 'dark'];
const WAIT = (plan.timeout ?? 90) * 1000;

const step = (what) => console.log(`step: ${what}`);
function fail(message) { throw new Error(message); }

mkdirSync(plan.screens, { recursive: true });
const profile = mkdtempSync(join(plan.profile_parent ?? tmpdir(), 'chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: plan.chromium ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: SIZES.desktop,
  colorScheme: 'light',
});
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(20000);
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
// The polls before the login are refused (403) on purpose; any other error counts.
page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('status of 403')) errors.push(m.text()); });

const grid = () => page.getByRole('grid', { name: 'Torrents' });
const row = (name) => page.getByRole('row', { name, exact: true });
const button = (name) => page.getByRole('button', { name, exact: true });
const dialog = () => page.locator('dialog[open]');

/** The text of a torrent row's cell (`.c-<key>`), read from the page. */
async function cellText(name, key) {
  return page.evaluate(([n, k]) => {
    const r = [...document.querySelectorAll('[role=row]')].find((e) => e.getAttribute('aria-label') === n);
    return r?.querySelector(`.c-${k}`)?.textContent ?? null;
  }, [name, key]);
}

/** Waits until a row's cell reads one of `texts`. */
async function waitCell(name, key, texts, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await cellText(name, key);
    if (texts.includes(last)) return last;
    await page.waitForTimeout(250);
  }
  fail(`${name}: ${key} is ${JSON.stringify(last)} after ${timeout / 1000}s, expected one of ${JSON.stringify(texts)}`);
}

/** GET an API path from inside the page (its session cookie), as JSON. */
const apiJson = (path) => page.evaluate(async (p) => (await fetch(`api/v2/${p}`)).json(), path);

async function hashOf(name) {
  const id = await row(name).getAttribute('id');
  return id.replace(/^row-/, '');
}

/** Runs axe-core on the page as it is; fails on a serious or critical violation. */
async function axeCheck(screen) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.violations.filter((v) => !bad.includes(v)).map((v) => `${v.id} (${v.impact})`);
  if (minor.length) console.log(`axe: ${screen}: minor: ${minor.join(', ')}`);
  if (bad.length) {
    const detail = bad.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
    fail(`axe: ${screen}: ${detail.join('\n')}`);
  }
}

/** Screenshots (and an axe run) of one screen in both themes at both sizes. */
async function gallery(screen, setup, teardown, sizes = Object.keys(SIZES)) {
  for (const size of sizes) {
    await page.setViewportSize(SIZES[size]);
    await setup(size);
    for (const scheme of SCHEMES) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.waitForTimeout(250);
      await page.screenshot({ path: join(plan.screens, `${screen}-${scheme}-${size}.png`) });
      await axeCheck(`${screen} (${scheme}, ${size})`);
    }
    await teardown?.(size);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(SIZES.desktop);
}

async function closeDialog() {
  await dialog().getByRole('button', { name: 'Cancel' }).click();
  await dialog().waitFor({ state: 'detached' });
}

async function openDetails(name, tab, size) {
  await row(name).click();
  if (size === 'phone') await page.locator('body.details-open').waitFor();
  await page.getByRole('tab', { name: tab }).click();
  await page.waitForTimeout(700);
}

async function closeDetails(size) {
  if (size === 'phone') await button('Close details').click();
}

try {
  // 1. No password yet: the UI opens at once. Settings: a category, then the credentials.
  step('open the UI');
  await page.goto(plan.base);
  await grid().waitFor();
  step('settings: a category and a password');
  await button('Settings').click();
  await dialog().getByLabel('New category', { exact: true }).fill(plan.category);
  await button('Create category').click();
  await dialog().getByText(plan.category, { exact: true }).waitFor();
  await dialog().getByLabel('Username', { exact: true }).fill(plan.username);
  await dialog().getByLabel('New password', { exact: true }).fill(plan.password);
  await dialog().getByRole('button', { name: 'Save' }).click();
  await dialog().waitFor({ state: 'detached' });

  // 2. With a password the page asks for a login.
  step('log in');
  await page.reload();
  await button('Log in').waitFor();
  await gallery('login', async () => {}, null);
  const login = page.getByRole('form', { name: 'Log in' });
  await login.getByLabel('Username').fill(plan.username);
  await login.getByLabel('Password').fill('wrong password');
  await login.getByRole('button', { name: 'Log in' }).click();
  await login.getByText('Wrong username or password.').waitFor();
  await login.getByLabel('Password').fill(plan.password);
  await login.getByRole('button', { name: 'Log in' }).click();
  await grid().waitFor();
  await gallery('empty-list', async () => {}, null, ['desktop']);

  // 3. A magnet link.
  step('add by magnet link');
  await button('Add torrent').click();
  await dialog().getByLabel('Magnet link or URL').fill(plan.magnet.link);
  await dialog().getByRole('button', { name: 'Add', exact: true }).click();
  await row(plan.magnet.name).waitFor({ timeout: WAIT });

  // 4. A .torrent file, its files chosen before the download starts: one is skipped.
  step('add by file upload, skipping a file');
  await button('Add torrent').click();
  await dialog().getByLabel('Choose .torrent files…').setInputFiles(plan.upload.torrent_file);
  await dialog().getByText(plan.upload.file_name).waitFor();
  await dialog().getByLabel('Choose files before downloading').check();
  await dialog().getByRole('button', { name: 'Add', exact: true }).click();
  const chooser = page.getByRole('dialog', { name: `Choose files: ${plan.upload.name}` });
  await chooser.waitFor({ timeout: WAIT });
  await gallery('choose-files', async () => {}, null);
  await chooser.getByRole('combobox', { name: `Priority of ${plan.upload.skip_leaf}`, exact: true }).selectOption('0');
  await page.waitForTimeout(500);
  await chooser.getByRole('button', { name: 'Start download' }).click();
  await chooser.waitFor({ state: 'hidden' });

  // 5. Both complete.
  step('watch both complete');
  await waitCell(plan.magnet.name, 'state', ['Seeding']);
  await waitCell(plan.upload.name, 'state', ['Seeding']);
  const bar = row(plan.magnet.name).getByRole('progressbar');
  if ((await bar.getAttribute('aria-valuenow')) !== '100') fail('the magnet torrent is not at 100%');
  const files = await apiJson(`torrents/files?hash=${await hashOf(plan.upload.name)}`);
  for (const f of files) {
    const skipped = f.name.endsWith(`/${plan.upload.skip_path}`);
    if (skipped && f.priority !== 0) fail(`${f.name}: priority ${f.priority}, expected 0 (skipped)`);
    if (!skipped && f.size > 0 && f.progress < 1) fail(`${f.name}: progress ${f.progress} after completion`);
  }
  console.log(`saw: files: ${files.map((f) => `${f.name}=${f.priority}`).join(' ')}`);

  // 6. Keyboard: the grid takes arrows, Space and Enter.
  step('keyboard');
  await grid().focus();
  await page.keyboard.press('Home');
  const first = grid().locator('[role=row][aria-selected=true]');
  if ((await first.count()) !== 1) fail('Home did not select the first row');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Shift+ArrowUp');
  if ((await grid().locator('[role=row][aria-selected=true]').count()) !== 2) fail('Shift+ArrowUp did not extend the selection');
  await page.keyboard.press('Escape');

  // 7. Stop and start.
  step('stop and start');
  await row(plan.magnet.name).click();
  await button('Stop').click();
  await waitCell(plan.magnet.name, 'state', ['Completed'], 20000);
  await button('Start').click();
  await waitCell(plan.magnet.name, 'state', ['Seeding'], 20000);

  // 8. A category.
  step('set a category');
  await page.getByLabel('Set category').selectOption(plan.category);
  await waitCell(plan.magnet.name, 'category', [plan.category], 10000);
  await page.getByRole('group', { name: 'Categories' }).getByRole('button', { name: new RegExp(`^${plan.category}`) }).click();
  if ((await grid().locator('.tbody [role=row]').count()) !== 1) fail('the category filter shows other torrents');
  await page.getByRole('group', { name: 'Categories' }).getByRole('button', { name: /^All/ }).click();

  // 9. Every screen, light and dark, desktop and phone.
  step('screens');
  await row(plan.magnet.name).click();
  await gallery('list', async (size) => {
    if (size === 'desktop') await row(plan.magnet.name).click();
  }, null);
  for (const tab of ['General', 'Trackers', 'Peers', 'Files', 'Pieces']) {
    const torrent = tab === 'Files' ? plan.upload.name : plan.magnet.name;
    await gallery(`details-${tab.toLowerCase()}`, (size) => openDetails(torrent, tab, size), closeDetails);
  }
  await gallery('filters', () => button('Filters').click(), async () => {
    await page.keyboard.press('Escape');
    await page.locator('body.sidebar-open').waitFor({ state: 'detached' });
  }, ['phone']);
  await gallery('add-dialog', () => button('Add torrent').click(), closeDialog);
  await gallery('settings', async () => { await button('Settings').click(); await dialog().waitFor(); }, closeDialog);
  await gallery('delete-dialog', async () => {
    await row(plan.upload.name).getByRole('checkbox').check();
    await button('Delete').click();
  }, async () => {
    await closeDialog();
    await row(plan.upload.name).getByRole('checkbox').uncheck();
  });

  // 10. Delete with data.
  step('delete with data');
  await row(plan.upload.name).click();
  await button('Delete').click();
  await dialog().getByLabel('Also delete the downloaded files').check();
  await dialog().getByRole('button', { name: 'Delete' }).click();
  await row(plan.upload.name).waitFor({ state: 'detached', timeout: 20000 });

  step('alternative speed limits');
  const alt = button('Alternative speed limits');
  const before = await alt.getAttribute('aria-pressed');
  await alt.click();
  await page.waitForFunction((b) => document.getElementById('btn-alt-speed').getAttribute('aria-pressed') !== b, before);
  await alt.click();

  if (errors.length) fail(`errors in the page: ${errors.join('\n')}`);
  console.log('webui: ok');
} catch (e) {
  await page.screenshot({ path: join(plan.screens, 'failure.png') }).catch(() => {});
  console.log(`failure screenshot: ${join(plan.screens, 'failure.png')}`);
  throw e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
