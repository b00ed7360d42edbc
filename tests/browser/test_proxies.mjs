// test_proxies.mjs - the proxy matrix (issue 15): real proxies from
// Debian's packages on loopback (tests/integration/lib/proxies.mjs) in
// front of one lighttpd + larkd, shared by every case.
//
// For each proxy:
//   raw      SSE and long-poll through it, from Node: does the hello (and a
//            live event) come through at once, or does the proxy hold the
//            stream back; is a held long-poll answered whole
//   browser  the demo page in Chromium behind it, 'auto': which transport
//            lark.js settles on, how long from the start of the page load
//            until the first live message shows (issue 15: within 8 s,
//            however the proxy treats streams), and that a burst of
//            messages then arrives complete, in order, once each
//
// The times are printed (docs/PROXIES.md has medians from
// tools/proxybench.mjs); the only timing asserted is the 8 s the issue
// sets, and generous bounds for "at once".

import { assert, cleanup, test } from '../integration/lib/harness.mjs';
import { Stack, devSecret, sleep } from '../integration/lib/stack.mjs';
import { Api, RawSSE, request, token } from '../integration/lib/client.mjs';
import { allProxies, missingProxies } from '../integration/lib/proxies.mjs';
import { launch, noPageErrors, untilShown } from './lib/browser.mjs';
import { visit } from './lib/proxied.mjs';

// What each proxy does to a stream, and so where 'auto' must settle.
// squid (and privoxy told to) refuse CONNECT to ports other than 443, so
// ws:// fails; stock nginx drops the Upgrade header; privoxy and the
// buffering nginx hold SSE back.
const EXPECT = {
  squid: { sse: 'streams', transport: 'sse' },
  tinyproxy: { sse: 'streams', transport: 'ws' },
  privoxy: { sse: 'buffers', transport: 'ws' },
  'privoxy-443': { sse: 'buffers', transport: 'poll' },
  'nginx-stock': { sse: 'streams', transport: 'sse' },
  nginx: { sse: 'streams', transport: 'ws' },
  'nginx-buffering': { sse: 'buffers', transport: 'poll' },
  haproxy: { sse: 'streams', transport: 'ws' },
};
const FIRST_MESSAGE_MS = 8000; // issue 15's target, from the start of the page load
const AT_ONCE_MS = 3000; // "at once" for a streaming proxy (measured: tens of ms)
const BURST = 30;

let s;
let browser;
let proxies = [];
const measured = [];

test('start: larkd, lighttpd, the proxies in front, Chromium', async () => {
  const missing = missingProxies();
  assert.deepEqual(missing, [], `Debian packages missing: run 'tools/deps.sh test'`);
  s = await new Stack({ LARK_JWT_SECRET: devSecret, LARK_DEV_TOKENS: '1', LARK_SEND_RATE: '0' }).start();
  proxies = allProxies(s.port);
  for (const p of proxies) await p.start();
  browser = await launch();
});

/** An API client of the stack's (development) secret, straight to the stack. */
function sender(user) {
  const api = new Api(s.url, user);
  api.tok = token(user, { secret: devSecret });
  return api;
}

/** Through proxy p: {base, proxy} for the raw client helpers. */
function via(p) {
  return p.kind === 'forward' ? { base: s.url, proxy: p.url } : { base: p.url, proxy: undefined };
}

for (const name of Object.keys(EXPECT)) {
  const want = EXPECT[name];
  const proxy = () => proxies.find((p) => p.name === name);

  test(`${name}: raw SSE ${want.sse === 'streams' ? 'streams: hello at once, a live event at once' : 'is held back: no hello'}`, async () => {
    const p = proxy();
    const { base, proxy: fwd } = via(p);
    const reader = `raw-sse-${name}`;
    const t0 = Date.now();
    const sse = new RawSSE(base, '/v1/events', { tok: token(reader, { secret: devSecret }), proxy: fwd });
    sse.ready.catch(() => {}); // a stream closed before its headers came (held back)
    cleanup(() => sse.close());
    if (want.sse === 'streams') {
      await sse.until((x) => x.hellos.length === 1, 'the hello', AT_ONCE_MS);
      const helloMs = Date.now() - t0;
      assert.equal(sse.status, 200);
      assert.match(sse.headers['content-type'], /^text\/event-stream/);
      const sent = Date.now();
      const r = await sender(`raw-sender-${name}`).send(reader, 'live through the proxy');
      assert.equal(r.status, 201);
      await sse.until((x) => x.stored().length === 1, 'the live event', AT_ONCE_MS);
      assert.equal(sse.stored()[0].json.data.body, 'live through the proxy');
      console.log(`     ${name}: SSE hello ${helloMs} ms, a live event ${Date.now() - sent} ms after its send`);
    } else {
      await sleep(AT_ONCE_MS);
      assert.ok(!sse.status || sse.status === 200, `status ${sse.status}: ${sse.raw}`);
      assert.equal(sse.hellos.length, 0, `${name} passed the hello: it no longer buffers SSE (update EXPECT and docs/PROXIES.md)`);
      console.log(`     ${name}: SSE nothing in ${AT_ONCE_MS} ms (${sse.raw.length} bytes, headers ${sse.status ? 'yes' : 'no'})`);
    }
  });

  test(`${name}: raw long-poll: a held poll is answered whole when a message comes, and empty at its timeout`, async () => {
    const { base, proxy: fwd } = via(proxy());
    const reader = `raw-poll-${name}`;
    const tok = token(reader, { secret: devSecret });
    // a connection each (agent: false): some proxies close one after an answer
    const held = request(base, 'GET', '/v1/poll?since=0&timeout=20', { tok, proxy: fwd, timeout: 30000, agent: false });
    await sleep(300);
    assert.equal((await sender(`raw-poller-${name}`).send(reader, 'for the held poll')).status, 201);
    const r = await held;
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.events.map((e) => e.data.body), ['for the held poll']);
    const t0 = Date.now();
    const idle = await request(base, 'GET', `/v1/poll?since=${r.json.next}&timeout=2`, { tok, proxy: fwd, timeout: 30000, agent: false });
    assert.equal(idle.status, 200);
    assert.deepEqual(idle.json, { events: [], next: r.json.next });
    assert.ok(Date.now() - t0 >= 1500, 'held until its timeout');
  });

  test(`${name}: the demo page in auto settles on ${want.transport}; first live message within ${FIRST_MESSAGE_MS / 1000} s; a burst arrives whole and in order`, async () => {
    const user = `page-${name}`;
    const sender = `sender-${name}`;
    const v = await visit(browser, s, proxy(), { user, sender, limit: FIRST_MESSAGE_MS + 7000 });
    cleanup(() => v.context.close());
    assert.notEqual(v.firstMs, null, `no message shown within ${FIRST_MESSAGE_MS + 7000} ms`);
    measured.push({ name, transport: v.transport, firstMs: v.firstMs });
    console.log(`     ${name}: settled on ${v.transport}, first live message after ${v.firstMs} ms`);
    assert.equal(v.transport, want.transport);
    assert.ok(v.firstMs <= FIRST_MESSAGE_MS, `first message after ${v.firstMs} ms (issue 15: within ${FIRST_MESSAGE_MS})`);

    // a burst, as fast as the sender can store it
    for (let i = 1; i <= BURST; i++) assert.equal((await v.api.send(user, `burst ${i}`)).status, 201);
    await v.page.click(`#conversations li[data-user="${sender}"]`);
    const want2 = [...v.sent, ...Array.from({ length: BURST }, (_, i) => `burst ${i + 1}`)];
    const p = { user, page: v.page };
    const got = await untilShown(p, (m) => m.length >= want2.length && m.every((x) => x.seq), `all ${want2.length} messages`, 20000);
    assert.deepEqual(got.map((m) => m.body), want2, 'complete, in order, none twice');
    assert.deepEqual(got.map((m) => m.seq), want2.map((_, i) => i + 1));
    assert.equal(await v.page.getAttribute('#status', 'data-transport'), want.transport, 'still on it');
    assert.equal(await v.page.getAttribute('#status', 'data-state'), 'open');
    const remembered = await v.page.evaluate(() => JSON.parse(localStorage.getItem('lark.transport') || 'null'));
    // SSE is remembered only after its first ping (15 s); ws and poll at once
    if (want.transport === 'sse') assert.ok(!remembered || remembered.transport === 'sse', JSON.stringify(remembered));
    else assert.equal(remembered && remembered.transport, want.transport);
    noPageErrors({ user, errors: v.errors });
  }, { timeout: 90000 });
}

test('stop', async () => {
  console.log('     proxy            transport  first live message');
  for (const m of measured) console.log(`     ${m.name.padEnd(16)} ${m.transport.padEnd(10)} ${m.firstMs} ms`);
  if (browser) await browser.close();
  for (const p of proxies) await p.stop();
  if (s) await s.stop();
});
