// proxied.mjs - the demo page behind a proxy (lib/proxies.mjs): a visit
// that measures what a person there sees - which transport lark.js settles
// on, and how long after the page starts loading the first live message
// shows - shared by tests/browser/test_proxies.mjs and tools/proxybench.mjs.

import { Api, token } from '../../integration/lib/client.mjs';
import { devSecret, sleep } from '../../integration/lib/stack.mjs';

const SESSION_KEY = 'lark.demo.session'; // www/app.js

/**
 * A browser context that reaches the stack through proxy: a forward proxy
 * is the context's proxy (Playwright keeps loopback proxied in Chromium),
 * a reverse proxy is where the page is loaded from. Returns {context, base}.
 */
export async function proxiedContext(browser, stack, proxy) {
  const forward = proxy && proxy.kind === 'forward';
  const context = await browser.newContext({
    viewport: { width: 1100, height: 700 },
    ...(forward ? { proxy: { server: proxy.url } } : {}),
  });
  context.setDefaultTimeout(15000);
  return { context, base: proxy && !forward ? proxy.url : stack.url };
}

/**
 * Open the demo page as user (already logged in: the session is in
 * localStorage before the page runs) with transport ('auto' by default),
 * while sender writes to user every tick ms, straight to the stack, until
 * the page's lark.js client has delivered one of those messages from its
 * stream. (Not until the conversation shows: the page also lists
 * conversations over plain HTTP when it starts, and that would show the
 * first message even if no stream ever delivered anything.) Returns
 * {context, page, errors, firstMs (ms from the start of the page load to
 * that delivery, or null within limit), sent (the bodies sent), transport
 * (lark.js's then), api (the sender's)}.
 */
export async function visit(browser, stack, proxy, { user, sender, transport = 'auto', tick = 2000, limit = 15000 }) {
  const { context, base } = await proxiedContext(browser, stack, proxy);
  const session = JSON.stringify({ user, token: token(user, { secret: devSecret }), transport });
  await context.addInitScript(([k, v]) => {
    if (!localStorage.getItem(k)) localStorage.setItem(k, v);
  }, [SESSION_KEY, session]);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e && e.stack ? e.stack : e)));
  const api = new Api(stack.url, sender);
  api.tok = token(sender, { secret: devSecret });

  const t0 = Date.now();
  let firstMs = null;
  const shownP = page.waitForFunction(() => {
    const lark = window.larkDemo && window.larkDemo.lark;
    return lark && lark.state === 'open' && lark.lastSeq >= 1;
  }, null, { timeout: limit, polling: 20 }).then(() => { firstMs = Date.now() - t0; }, () => {});
  const loaded = page.goto(`${base}/`, { timeout: limit });
  const sent = [];
  while (firstMs === null && Date.now() - t0 < limit) {
    const body = `tick ${sent.length + 1}`;
    const r = await api.send(user, body);
    if (r.status !== 201) throw new Error(`send ${body}: ${r.status} ${r.body}`);
    sent.push(body);
    await Promise.race([shownP, sleep(tick)]);
  }
  await shownP;
  await loaded;
  const settled = await page.evaluate(() => (window.larkDemo && window.larkDemo.lark ? window.larkDemo.lark.transport : null));
  return { context, page, errors, firstMs, sent, transport: settled, api };
}
