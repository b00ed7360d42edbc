// test_restart.mjs - larkd restarts in the middle of a chat: every page
// (WebSocket, SSE, long-poll) shows it is reconnecting, sends typed
// meanwhile wait with a clock, and after the restart every page catches up
// with every message exactly once, in order (API.md "Operations": drain,
// reconnect with jittered backoff, resume from seq).

import { assert, test } from '../integration/lib/harness.mjs';
import { Stack, devSecret, sleep, waitFor } from '../integration/lib/stack.mjs';
import { Api, request, token } from '../integration/lib/client.mjs';
import { launch, noPageErrors, person, say, screenshot, untilShown } from './lib/browser.mjs';

const WS = 'ws';

let s;
let browser;
const people = [];

test('start: larkd with development tokens, lighttpd, Chromium', async () => {
  s = await new Stack({ LARK_JWT_SECRET: devSecret, LARK_DEV_TOKENS: '1', LARK_SEND_RATE: '0' }).start();
  browser = await launch();
});

test('larkd restarts mid-chat: pages reconnect and catch up, nothing lost or doubled', async () => {
  const kim = await person(browser, s, 'kim', WS);
  const lou = await person(browser, s, 'lou', 'sse');
  const max = await person(browser, s, 'max', 'poll');
  people.push(kim, lou, max);

  await kim.page.fill('#new-chat input[name=with]', 'lou, max');
  await kim.page.press('#new-chat input[name=with]', 'Enter');
  for (const p of [lou, max]) {
    await p.page.waitForSelector('#conversations li[data-name="kim, lou, max"]');
    await p.page.click('#conversations li[data-name="kim, lou, max"]');
  }
  await kim.page.waitForSelector('#conversations li.active[data-name="kim, lou, max"]');
  const conv = await kim.page.evaluate(() => window.larkDemo.current);
  await say(kim, 'before 1');
  await untilShown(max, (m) => m.length === 1, 'first at max');
  await say(lou, 'before 2');
  for (const p of [kim, lou, max]) await untilShown(p, (m) => m.length === 2 && m.every((x) => x.seq), `two at ${p.user}`);

  // larkd goes away (SIGTERM: drain, exit) and stays away a while.
  await s.stopLarkd();
  for (const p of [kim, lou, max])
    await p.page.waitForSelector('#status:not([data-state=open])');
  await say(kim, 'during kim');
  await say(max, 'during max');
  const waiting = await untilShown(kim, (m) => m.some((x) => x.pending), 'a clock at kim');
  assert.equal(waiting[waiting.length - 1].status, 'pending');
  await screenshot(kim, 'restart-during-kim');
  await sleep(1500);

  await s.restartLarkd();
  // As soon as lighttpd passes requests again (it waits a moment before it
  // retries a backend that was down), more arrive from lou's other device.
  await waitFor(async () => (await request(s.url, 'GET', '/v1/healthz')).status === 200, 'healthz', 20000, 100);
  const api = new Api(s.url, 'lou');
  api.tok = token('lou', { secret: devSecret });
  for (let i = 1; i <= 3; i++)
    assert.equal((await api.post('/v1/messages', { conversation_id: conv, body: `after ${i}` })).status, 201);

  let order = null; // the one order every member must see
  for (const p of [kim, lou, max]) {
    await p.page.waitForSelector('#status[data-state=open]', { timeout: 30000 });
    const got = await untilShown(p, (m) => m.length === 7 && m.every((x) => x.seq), `all 7 at ${p.user}`, 30000);
    assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7], `${p.user}: ${JSON.stringify(got)}`);
    const bodies = got.map((m) => m.body);
    assert.deepEqual(bodies.slice(0, 2), ['before 1', 'before 2']);
    // the queued sends and the API's raced after the restart: any order,
    // but each once, lou's own three in their order, and the same for all
    assert.deepEqual(bodies.slice(2).sort(), ['after 1', 'after 2', 'after 3', 'during kim', 'during max']);
    assert.deepEqual(bodies.filter((b) => b.startsWith('after')), ['after 1', 'after 2', 'after 3']);
    if (order) assert.deepEqual(bodies, order, `${p.user} sees another order`);
    order = bodies;
  }
  await sleep(1000); // anything doubled would be shown by now
  for (const p of [kim, lou, max]) {
    const got = await untilShown(p, (m) => m.length === 7, `still 7 at ${p.user}`);
    assert.equal(new Set(got.map((m) => m.seq)).size, 7);
    const transport = await p.page.getAttribute('#status', 'data-transport');
    assert.equal(transport, { kim: WS, lou: 'sse', max: 'poll' }[p.user]);
    await screenshot(p, `restart-after-${p.user}-${transport}`);
  }
  // the stream too: every stored event once, in seq order
  for (const p of [kim, lou, max]) {
    const dups = await p.page.evaluate(() => window.larkDemo.lark.duplicates);
    assert.ok(dups >= 0);
  }
  noPageErrors(kim, lou, max);
}, { timeout: 120000 });

test('stop', async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (s) await s.stop();
});
