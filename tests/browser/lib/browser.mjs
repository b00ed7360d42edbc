// browser.mjs - headless Chromium for the browser tests, through
// playwright-core and Debian's /usr/bin/chromium (never a downloaded
// browser), plus helpers to log in to the demo page as a name.
//
// Every wait is bounded (Playwright's own timeouts, set short below).
// Uncaught errors in a page are collected and fail the test that checks
// pageErrors().

import fs from 'node:fs';
import path from 'node:path';
import { top } from '../../integration/lib/stack.mjs';

export const CHROMIUM = process.env.LARK_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(top, 'tests/artifacts');

// As the CI image runs it: no sandbox (root in a container), no GPU, no
// background traffic to anywhere but the stack under test.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const WAIT_MS = 15000; // the longest any single expectation waits

/** Why the browser tests cannot run here, or null if they can. */
export async function missing() {
  if (!fs.existsSync(CHROMIUM))
    return `Chromium is not installed at ${CHROMIUM}: run 'tools/deps.sh test' (Debian package chromium)`;
  try {
    await import('playwright-core');
  } catch {
    return "the npm package playwright-core is missing: run 'tools/deps.sh test' (npm ci)";
  }
  return null;
}

export async function launch() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
}

/**
 * A person at the demo page: a fresh browser context (its own storage),
 * logged in as user. transport: forced with ?transport= unless 'auto'.
 * Returns {user, context, page, errors}.
 */
export async function person(browser, stack, user, transport, { setup } = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e && e.stack ? e.stack : e)));
  if (setup) await setup(page, context);
  const q = transport && transport !== 'auto' ? `?transport=${transport}` : '';
  await page.goto(`${stack.url}/${q}`);
  await page.fill('#login input[name=user]', user);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#status[data-state=open]');
  return { user, context, page, errors };
}

/** Start (or open) the direct chat with another user from the sidebar. */
export async function chatWith(p, other) {
  await p.page.fill('#new-chat input[name=with]', other);
  await p.page.press('#new-chat input[name=with]', 'Enter');
}

/** Type and send a message in the open conversation. */
export async function say(p, text) {
  await p.page.fill('#composer input[name=body]', text);
  await p.page.press('#composer input[name=body]', 'Enter');
}

/** The messages shown in the open conversation: [{seq, sender, body, status}]. */
export function shown(p) {
  return p.page.$$eval('#messages li.msg', (els) => els.map((e) => ({
    seq: e.dataset.seq ? Number(e.dataset.seq) : null,
    sender: e.dataset.sender || null,
    pending: Boolean(e.dataset.pending),
    body: e.querySelector('.body').textContent,
    status: e.querySelector('.ticks') ? e.querySelector('.ticks').dataset.status : null,
  })));
}

/** Wait until pred(shown messages) holds. */
export async function untilShown(p, pred, what, limit = WAIT_MS) {
  const end = Date.now() + limit;
  let last = [];
  for (;;) {
    last = await shown(p);
    if (pred(last)) return last;
    if (Date.now() > end)
      throw new Error(`${p.user}: timed out waiting for ${what}; shown: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function screenshot(p, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await p.page.screenshot({ path: file });
  return file;
}

/** Assert no page threw an uncaught error. */
export function noPageErrors(...people) {
  const errs = people.flatMap((p) => p.errors.map((e) => `${p.user}: ${e}`));
  if (errs.length) throw new Error(`uncaught errors in the page:\n${errs.join('\n')}`);
}
