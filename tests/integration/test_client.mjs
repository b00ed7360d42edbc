// test_client.mjs - www/lark.js, the browser client, run in Node against
// the real stack over WebSocket, long-poll and SSE (the ws and eventsource
// packages stand in for the browser's WebSocket and EventSource):
// delivery, receipts, typing, presence, resume after a larkd restart with
// nothing lost or doubled, the outbox, backoff, and the 'auto' fallback.
// The browser suite (tests/browser/) does the same through the demo page
// in Chromium.

import { EventSource } from 'eventsource';
import { WebSocket } from 'ws';
import { assert, test } from './lib/harness.mjs';
import { Stack, sleep, waitFor } from './lib/stack.mjs';
import { Api, token } from './lib/client.mjs';
import { backoffDelay, connect, LarkError } from '../../www/lark.js';

globalThis.EventSource = EventSource;
globalThis.WebSocket = WebSocket;

let s;
const open = []; // clients to close at the end, whatever happens

/** A lark.js client that records what it sees. */
function client(user, opts = {}) {
  const seen = { events: [], statuses: [], user };
  const lark = connect({
    url: s.url, token: token(user), backoffBase: 100, backoffCap: 1000, pollTimeout: 5,
    onEvent: (ev) => seen.events.push(ev),
    onStatus: (st) => seen.statuses.push(st),
    ...opts,
  });
  open.push(lark);
  seen.lark = lark;
  seen.messages = () => seen.events.filter((e) => e.type === 'message').map((e) => e.data);
  seen.stored = () => seen.events.filter((e) => e.seq !== undefined);
  return seen;
}

const isOpen = (c) => c.lark.state === 'open';

/* lighttpd rests a backend it found down for up to a second after larkd is
 * back, answering 503 meanwhile (docs/API.md): a client retries a 503, as
 * lark.js does; the client_msg_id keeps a retry from doubling. */
async function sendRetrying(api, to, body) {
  for (let i = 0; i < 50; i++) {
    const r = await api.send(to, body, { client_msg_id: `retry-${to}-${body}` });
    if (r.status !== 503) return r;
    await sleep(100);
  }
  throw new Error(`${body}: still 503 after 5 s`);
}

test('start (presence ttl 3 s, an SSE ping every second)', async () => {
  s = await new Stack({
    LARK_PRESENCE_TTL: '3', LARK_PRESENCE_INTERVAL: '1', LARK_SEND_RATE: '0', LARK_SSE_KEEPALIVE: '1',
  }).start();
});

for (const transport of ['ws', 'poll', 'sse']) {
  test(`${transport}: messages both ways, delivered and read receipts, typing, presence`, async () => {
    const a = client(`${transport}-ann`, { transport });
    const b = client(`${transport}-ben`, { transport });
    await waitFor(() => isOpen(a) && isOpen(b), 'both open');
    assert.equal(a.lark.transport, transport);
    assert.ok(a.statuses.some((st) => st.state === 'open' && st.transport === transport));

    const m = await a.lark.send({ to: b.user, body: 'hello ben' });
    // once they share a conversation ann may see ben's presence (shared)
    await a.lark.watch([b.user]);
    assert.equal(m.sender, a.user);
    assert.equal(m.body, 'hello ben');
    await waitFor(() => b.messages().some((x) => x.id === m.id), 'ben gets the message');
    // the sender's own inbox has it too (API.md: sender included)
    await waitFor(() => a.messages().some((x) => x.id === m.id), 'ann sees her own message');

    // ben processed it: lark.js acknowledged it, so ann hears "delivered"
    await waitFor(() => a.events.some((e) => e.type === 'receipt' && e.data.status === 'delivered' &&
      e.data.user === b.user && e.data.up_to >= m.seq), 'delivered receipt');
    await b.lark.read(m.conversation_id, m.seq);
    await waitFor(() => a.events.some((e) => e.type === 'receipt' && e.data.status === 'read' &&
      e.data.up_to === m.seq), 'read receipt');

    b.lark.typing(m.conversation_id);
    b.lark.typing(m.conversation_id); // throttled: one notice
    await waitFor(() => a.events.some((e) => e.type === 'typing' && e.data.user === b.user), 'typing');
    assert.equal(a.events.filter((e) => e.type === 'typing').length, 1);

    // presence: ann watches ben, who is connected
    await waitFor(() => a.events.some((e) => e.type === 'presence' && e.data.user === b.user &&
      e.data.status === 'online'), 'ben online');

    const r = await b.lark.send({ conversation_id: m.conversation_id, body: 'hi ann' });
    await waitFor(() => a.messages().some((x) => x.id === r.id), 'ann gets the reply');

    // stored events in strictly increasing seq, none twice
    for (const c of [a, b]) {
      const seqs = c.stored().map((e) => e.seq);
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `${c.user}: ${seqs}`);
    }
    a.lark.close();
    b.lark.close();
    assert.equal(a.lark.state, 'closed');
  });
}

test('a closed client rejects sends; a refused send rejects with the server error', async () => {
  const a = client('rej-ann', { transport: 'poll' });
  await waitFor(() => isOpen(a), 'open');
  await assert.rejects(a.lark.send({ to: 'bad id', body: 'x' }),
    (e) => e instanceof LarkError && e.code === 'invalid_field' && e.status === 400);
  // the outbox goes on after a refusal
  const ok = await a.lark.send({ to: 'rej-ben', body: 'still works' });
  assert.equal(ok.body, 'still works');
  a.lark.close();
  await assert.rejects(a.lark.send({ to: 'rej-ben', body: 'x' }), (e) => e.code === 'closed');
});

for (const transport of ['ws', 'poll']) {
  test(`${transport}: a retried send keeps its client_msg_id: stored once; message types travel`, async () => {
    const a = client(`idem-${transport}`, { transport });
    await waitFor(() => isOpen(a), 'open');
    const one = await a.lark.send({ to: 'idem-ben', body: 'once', client_msg_id: `fixed-${transport}` });
    const two = await a.lark.send({ to: 'idem-ben', body: 'once', client_msg_id: `fixed-${transport}` });
    assert.equal(one.id, two.id);
    const img = await a.lark.send({ to: 'idem-ben', body: 'a cat', type: 'image', meta: { url: 'https://x/cat.png' } });
    assert.equal(img.type, 'image');
    assert.deepEqual(img.meta, { url: 'https://x/cat.png' });
    // a refusal names the send it refuses, and the outbox goes on
    await assert.rejects(a.lark.send({ to: 'idem-ben', body: '' }),
      (e) => e instanceof LarkError && e.code === 'invalid_field');
    assert.equal((await a.lark.send({ to: 'idem-ben', body: 'after' })).body, 'after');
    a.lark.close();
  });
}

test('ws: non-ASCII survives the ASCII-only, line-cut stream both ways', async () => {
  const a = client('utf-ann', { transport: 'ws' });
  const b = client('utf-ben', { transport: 'ws' });
  await waitFor(() => isOpen(a) && isOpen(b), 'open');
  const body = 'héllo 👋 ' + 'ж'.repeat(5000) + ' 中文';
  const m = await a.lark.send({ to: b.user, body });
  assert.equal(m.body, body);
  await waitFor(() => b.messages().some((x) => x.id === m.id), 'ben gets it');
  assert.equal(b.messages().find((x) => x.id === m.id).body, body);
  a.lark.close();
  b.lark.close();
});

for (const transport of ['ws', 'poll', 'sse']) {
  test(`${transport}: larkd restarts mid-chat; sends queued meanwhile; nothing lost or doubled`, async () => {
    const a = client(`rs-${transport}-ann`, { transport });
    const b = client(`rs-${transport}-ben`, { transport });
    await waitFor(() => isOpen(a) && isOpen(b), 'both open');
    const first = await a.lark.send({ to: b.user, body: 'before 0' });
    await waitFor(() => b.messages().length === 1, 'ben has the first');

    await s.stopLarkd(); // SIGTERM: drain, then exit
    await waitFor(() => !isOpen(a) && !isOpen(b), 'both see the outage', 15000);
    // sends while the server is down wait in the outbox, in order
    const during = [1, 2, 3].map((i) => a.lark.send({ to: b.user, body: `during ${i}` }));
    await sleep(300);
    assert.equal(a.lark.queued, 3);
    await s.restartLarkd();
    const sent = await Promise.all(during);
    assert.deepEqual(sent.map((m) => m.body), ['during 1', 'during 2', 'during 3']);
    assert.deepEqual(sent.map((m) => m.seq), [first.seq + 1, first.seq + 2, first.seq + 3]);
    // more from another user's API client, right after the restart
    const api = new Api(s.url, 'rs-carl');
    for (let i = 0; i < 5; i++) assert.equal((await sendRetrying(api, b.user, `carl ${i}`)).status, 201);

    await waitFor(() => b.messages().length === 9, 'ben has all 9', 20000);
    await sleep(500); // anything doubled would arrive by now
    const bodies = b.messages().map((m) => m.body);
    assert.deepEqual(bodies, ['before 0', 'during 1', 'during 2', 'during 3',
      'carl 0', 'carl 1', 'carl 2', 'carl 3', 'carl 4']);
    const seqs = b.stored().map((e) => e.seq);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `ben's seqs ${seqs}`);
    assert.ok(b.statuses.some((st) => st.state === 'reconnecting'));
    assert.ok(isOpen(b));
    a.lark.close();
    b.lark.close();
  }, { timeout: 90000 });
}

test('resume from since: only the events after it', async () => {
  const api = new Api(s.url, 'since-ben');
  const sender = new Api(s.url, 'since-ann');
  for (let i = 0; i < 4; i++) await sender.send('since-ben', `m${i}`);
  const all = (await api.poll('?since=0&timeout=0')).json.events;
  const b = client('since-ben', { transport: 'sse', since: all[1].seq });
  await waitFor(() => b.messages().length === 2, 'two after since');
  assert.deepEqual(b.messages().map((m) => m.body), ['m2', 'm3']);
  assert.equal(b.lark.lastSeq, all[3].seq);
  // resuming from the newest: nothing
  const c = client('since-ben', { transport: 'poll', since: all[3].seq });
  await waitFor(() => isOpen(c), 'open');
  assert.equal(c.messages().length, 0);
  b.lark.close();
  c.lark.close();
});

test('duplicates by seq are dropped (at-least-once delivery)', async () => {
  const api = new Api(s.url, 'dup-ben');
  await new Api(s.url, 'dup-ann').send('dup-ben', 'one');
  await new Api(s.url, 'dup-ann').send('dup-ben', 'two');
  const evs = (await api.poll('?since=0&timeout=0')).json.events;
  // a client that resumes from 0 twice, as if the first answer were lost
  const b = client('dup-ben', { transport: 'poll', since: 0 });
  await waitFor(() => b.messages().length === 2, 'both');
  // replay what a server could send again after a reconnect
  for (const ev of evs) b.lark._deliver(ev);
  assert.equal(b.messages().length, 2);
  assert.equal(b.lark.duplicates, 2);
  b.lark.close();
});

test('backoff: full jitter, capped', () => {
  for (const [attempt, bound] of [[0, 500], [1, 1000], [3, 4000], [6, 30000], [40, 30000]]) {
    const xs = Array.from({ length: 2000 }, () => backoffDelay(attempt));
    assert.ok(Math.min(...xs) >= 0);
    assert.ok(Math.max(...xs) < bound, `attempt ${attempt}`);
    assert.ok(Math.max(...xs) > bound * 0.9, `attempt ${attempt} spreads up to ${bound}`);
    const mean = xs.reduce((x, y) => x + y, 0) / xs.length;
    assert.ok(Math.abs(mean - bound / 2) < bound * 0.08, `attempt ${attempt}: mean ${mean}`);
  }
});

test('auto: a WebSocket that never opens falls back to SSE, and SSE is remembered', async () => {
  // A proxy that refuses the upgrade: every WebSocket closes at once.
  const made = [];
  globalThis.WebSocket = class {
    constructor(url) {
      made.push(url);
      setTimeout(() => this.onclose && this.onclose({ code: 1006 }), 5);
    }
    send() {}
    close() {}
  };
  const store = new Map();
  globalThis.localStorage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => store.set(k, String(v)),
    removeItem: (k) => store.delete(k),
  };
  try {
    const a = client('auto-ann', { transport: 'auto' });
    await waitFor(() => isOpen(a), 'open', 15000);
    assert.equal(a.lark.transport, 'sse');
    assert.equal(made.length, 2, 'two tries of ws while the server answered');
    assert.match(made[0], /^ws:\/\/127\.0\.0\.1:\d+\/v1\/ws$/);
    // remembered once a ping proved that events flow (a second here)
    assert.ok(!store.has('lark.transport'), 'not remembered at the first event');
    await waitFor(() => store.has('lark.transport'), 'SSE remembered after a ping', 5000);
    assert.equal(JSON.parse(store.get('lark.transport')).transport, 'sse');
    a.lark.close();
    // the next start goes straight to what worked
    const b = client('auto-ann', { transport: 'auto' });
    await waitFor(() => isOpen(b), 'open');
    assert.equal(made.length, 2);
    assert.equal(b.statuses[0].transport, 'sse');
    b.lark.close();
  } finally {
    globalThis.WebSocket = WebSocket;
    delete globalThis.localStorage;
  }
});

test('a refused token: unauthorized (static token), or a new one asked for (function)', async () => {
  const bad = client('tok-ann', { transport: 'sse', token: 'not.a.jwt' });
  await waitFor(() => bad.lark.state === 'unauthorized', 'unauthorized');
  bad.lark.close();
  let calls = 0;
  const fresh = client('tok-ann', {
    transport: 'poll',
    token: (refresh) => { calls++; return refresh ? token('tok-ann') : 'expired.or.bad'; },
  });
  await waitFor(() => isOpen(fresh), 'open with the refreshed token');
  assert.equal(calls, 2);
  fresh.lark.close();
});

test('stop', async () => {
  for (const l of open) l.close();
  await s.stop();
});
