// test_lark_transport.mjs - www/lark.js's transport state machine under a
// fake clock (lib/fakes.mjs): when a stream counts as open, when it is
// stuck, what earns a strike, what 'auto' remembers and how fast it falls
// back (issue 15: behind default privoxy or a buffering reverse proxy,
// live messages within 8 s of page load, nothing lost or doubled; behind a
// streaming proxy, nothing changes).
//
//   node --test tests/js/test_*.mjs

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { connect } from '../../www/lark.js';
import { FakeClock, FakeServer } from './lib/fakes.mjs';

let clock;
let server;
let clients;
let realRandom;

beforeEach(() => {
  clock = new FakeClock().install();
  server = new FakeServer(clock).install();
  clients = [];
  // backoffDelay draws from Math.random: the middle of every range
  realRandom = Math.random;
  Math.random = () => 0.5;
});

afterEach(() => {
  for (const c of clients) c.lark.close();
  Math.random = realRandom;
  server.uninstall();
  clock.uninstall();
});

/** A client that records what it sees; opts as for connect(). */
function client(opts = {}) {
  const seen = { events: [], statuses: [] };
  seen.lark = connect({
    url: 'http://lark.test', token: 'tok', heartbeat: false,
    onEvent: (ev) => seen.events.push(ev),
    onStatus: (st) => seen.statuses.push({ ...st, at: clock.now }),
    ...opts,
  });
  seen.seqs = () => seen.events.filter((e) => e.seq !== undefined).map((e) => e.seq);
  seen.open = () => seen.lark.state === 'open';
  clients.push(seen);
  return seen;
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('SSE: a fresh ticket for every connection, never the token in the URL (issue 13)', async () => {
  const c = client({ transport: 'sse' });
  await clock.until(() => c.open(), 'SSE open');
  server.eventSources[0].onerror(new Error('cut'));
  await clock.until(() => server.eventSources.length === 2 && c.open(), 'reconnected');
  assert.deepEqual(server.eventSources.map((es) => new URL(es.url).searchParams.get('ticket')),
    ['ticket-1', 'ticket-2']);
  for (const es of server.eventSources) assert.ok(!es.url.includes('tok'), es.url);
});

test('SSE is open at its first event (hello), not when headers arrive', async () => {
  server.sse = 'headers';
  const c = client({ transport: 'sse' });
  await clock.advance(3000);
  assert.equal(server.eventSources.length, 1);
  assert.equal(c.lark.state, 'connecting', 'headers alone prove nothing');

  server.sse = 'stream';
  const d = client({ transport: 'sse' });
  const took = await clock.until(d.open, 'open');
  assert.ok(took <= 20, `open ${took} ms after the connect (the hello)`);
  assert.equal(d.lark.transport, 'sse');
});

test('a stream with no first event within openTimeout is stuck; auto falls back to long-poll at once', async () => {
  // Debian's default privoxy: ws:// refused (CONNECT to a port other than
  // 443), and an event stream that never shows a byte.
  server.ws = 'refuse';
  server.sse = 'silent';
  server.publish(3);
  const c = client();
  const took = await clock.until(() => c.open() && c.seqs().length === 3, 'delivery');
  assert.equal(c.lark.transport, 'poll');
  assert.ok(took < 8000, `delivered ${took} ms after the connect (issue 15: within 8 s)`);
  // exactly: two WebSocket tries, one SSE try of openTimeout, then poll
  assert.equal(server.sockets.length, 2);
  assert.equal(server.eventSources.length, 1);
  assert.ok(server.eventSources[0].closed, 'the stuck stream was closed');
  const stuck = c.statuses.find((st) => /stream stuck/.test(st.error || ''));
  assert.ok(stuck, 'the status says why');
  assert.equal(stuck.delay, 0, 'the server answered, so the next transport is tried at once');
  assert.equal(server.remembered(), 'poll');

  // and it keeps delivering, each event once, in order
  for (let i = 0; i < 5; i++) {
    await clock.advance(2000);
    server.publish(2);
  }
  await clock.until(() => c.seqs().length === 13, 'all 13');
  assert.deepEqual(c.seqs(), range(1, 13));
  assert.equal(c.lark.duplicates, 0);
  assert.equal(c.lark.transport, 'poll');
});

test('a buffering reverse proxy: opens with the first 4 KiB batch, stuck after 2 x keep-alive + margin, falls back, nothing lost or doubled', async () => {
  server.ws = 'refuse';
  server.sse = 'batch';
  server.publish(60); // over 4 KiB of backlog: the first batch goes out at once
  const c = client();
  await clock.until(() => c.open() && c.lark.transport === 'sse', 'SSE open');
  const opened = c.statuses.find((st) => st.state === 'open').at;
  assert.ok(c.seqs().length > 0 && c.seqs().length < 60, `a first batch: ${c.seqs().length} events`);
  assert.notEqual(server.remembered(), 'sse', 'not remembered: nothing proved it streams');

  // live messages now sit in the proxy's buffer...
  server.publish(5);
  await clock.until(() => c.lark.transport === 'poll' && c.open(), 'the fall back to long-poll', 60000);
  const stuckAfter = c.statuses.find((st) => /stream stuck/.test(st.error || '')).at - opened;
  // default keepalive 15 s, stuckMargin 5 s
  assert.equal(stuckAfter, 35000, 'stuck 2 x 15 s + 5 s after the last event');
  // ...and come over long-poll, from where SSE stopped
  await clock.until(() => c.seqs().length === 65, 'all 65');
  assert.deepEqual(c.seqs(), range(1, 65));
  assert.equal(c.lark.duplicates, 0);
  assert.ok(server.requests.some((r) => /^GET \/v1\/poll\?.*since=\d+/.test(r)), 'the poll resumed with since=');
  assert.ok(!server.storage.writes.some((w) => JSON.parse(w).transport === 'sse'), 'SSE was never remembered');
  assert.equal(server.remembered(), 'poll');
});

test('behind a streaming proxy nothing changes: pings keep a quiet stream open for good, and SSE is remembered once a ping came', async () => {
  server.ws = 'refuse';
  const c = client();
  await clock.until(() => c.open() && c.lark.transport === 'sse', 'SSE open', 5000);
  assert.equal(server.remembered(), null, 'not before a ping');
  await clock.advance(server.keepalive);
  assert.equal(server.remembered(), 'sse', 'remembered after the first ping');
  await clock.advance(10 * 60 * 1000);
  assert.equal(server.eventSources.length, 1, 'one stream for ten quiet minutes');
  assert.ok(c.open());
  server.publish(2);
  await clock.advance(10);
  assert.deepEqual(c.seqs(), [1, 2]);
  // the next visit starts where this one ended
  c.lark.close();
  const next = client();
  assert.equal(next.lark.transport, 'sse');
  await clock.until(next.open, 'open');
  assert.equal(server.sockets.length, 2, 'no WebSocket tried again');
});

test('a stream that proved itself and then goes quiet reconnects on the same transport, no strike', async () => {
  const c = client();
  server.ws = 'refuse';
  await clock.until(() => c.open() && c.lark.transport === 'sse', 'SSE open');
  await clock.advance(server.keepalive + 100); // a ping: proven
  server.eventSources[0].freeze(); // a laptop asleep, a Wi-Fi change
  const frozen = clock.now;
  const probes = () => server.requests.filter((r) => r.includes('heartbeat')).length;
  const probesBefore = probes();
  await clock.until(() => server.eventSources.length === 2, 'a new stream', 60000);
  const quiet = clock.now - frozen;
  // 2 x 15 s + 5 s after the last ping, which came 100 ms before the freeze
  assert.ok(quiet >= 34900 && quiet < 36000, `reconnected after ${quiet} ms of silence`);
  assert.equal(probes(), probesBefore, 'no probe: not a strike');
  await clock.until(c.open, 'open again');
  assert.equal(c.lark.transport, 'sse');
  assert.equal(server.remembered(), 'sse');
});

test('keepalive sets the quiet limit: 2 x keepalive + stuckMargin', async () => {
  server.keepalive = 3600 * 1000; // a server that pings rarely
  const c = client({ transport: 'sse', keepalive: 5000, stuckMargin: 2000 });
  await clock.until(c.open, 'open');
  const opened = clock.now;
  await clock.advance(11900);
  assert.ok(c.open(), 'still open 11.9 s after the last event');
  await clock.advance(200);
  assert.equal(c.lark.state, 'reconnecting', `stuck at ${clock.now - opened} ms`);
});

test('stuck while the server is down is no strike: the same transport again, with backoff', async () => {
  server.ws = 'refuse';
  server.sse = 'silent';
  server.heartbeatStatus = 503;
  server.publish(1);
  // start on SSE, as a returning visitor whose SSE worked before
  server.storage.setItem('lark.transport', JSON.stringify({ transport: 'sse', at: clock.now }));
  const c = client();
  await clock.advance(60000);
  assert.equal(c.lark.transport, 'sse', 'never moved down during an outage');
  assert.ok(server.eventSources.length >= 5, `${server.eventSources.length} tries`);
  const delays = c.statuses.filter((st) => st.state === 'reconnecting' && st.delay !== undefined).map((st) => st.delay);
  assert.ok(delays[delays.length - 1] > delays[0], `backing off: ${delays}`);
  // the server is back: the stuck stream now counts, and the client falls back
  server.heartbeatStatus = 200;
  await clock.until(() => c.open() && c.seqs().length === 1, 'delivery over long-poll', 60000);
  assert.equal(c.lark.transport, 'poll');
});

test('a slow probe makes a stuck stream one strike of two, not a decisive one', async () => {
  server.ws = 'refuse';
  server.sse = 'silent';
  server.heartbeatDelay = 2500; // over openTimeout / 2: a slow network, not a buffering proxy
  const c = client({ transport: 'auto' });
  await clock.until(() => c.open(), 'open', 60000);
  assert.equal(c.lark.transport, 'poll');
  assert.equal(server.eventSources.length, 2, 'two stuck SSE tries before moving down');
});

test('a forced transport never moves down', async () => {
  server.sse = 'silent';
  const c = client({ transport: 'sse' });
  await clock.advance(60000);
  assert.equal(c.lark.transport, 'sse');
  assert.ok(server.eventSources.length >= 4);
  assert.equal(server.remembered(), null, 'only auto remembers');
});

test('a remembered SSE that gets stuck is forgotten', async () => {
  server.sse = 'silent';
  server.heartbeatDelay = 2500; // so that it takes two strikes: the memory goes at the first
  server.storage.setItem('lark.transport', JSON.stringify({ transport: 'sse', at: clock.now }));
  const c = client();
  assert.equal(c.lark.transport, 'sse', 'starts with what was remembered');
  await clock.until(() => server.requests.some((r) => r.includes('heartbeat')), 'the probe after the first stuck try');
  await clock.advance(server.heartbeatDelay);
  assert.equal(server.remembered(), null);
  await clock.until(() => c.open(), 'open', 60000);
  assert.equal(c.lark.transport, 'poll');
  assert.equal(server.remembered(), 'poll');
});

test('WebSocket: open at the pong, or at a hello; refused twice while the server answers: SSE', async () => {
  const a = client({ transport: 'ws' });
  await clock.until(a.open, 'open on pong');
  assert.deepEqual(server.sockets[0].lines.map((l) => l.type), ['auth', 'ping']);
  server.wsHello = true;
  const b = client({ transport: 'ws' });
  await clock.until(b.open, 'open on hello');
  assert.ok(!b.events.some((e) => e.type === 'hello'), 'hello is not an inbox event');
  a.lark.close();
  b.lark.close();

  server.ws = 'refuse';
  const c = client();
  await clock.until(() => c.open(), 'open');
  assert.equal(c.lark.transport, 'sse');
  assert.equal(server.sockets.length, 4, 'two refused tries: two strikes');
});

test('WebSocket: upgraded and then silent is stuck after openTimeout, and auto moves on', async () => {
  server.ws = 'silent';
  const c = client();
  const took = await clock.until(() => c.open(), 'open');
  assert.equal(c.lark.transport, 'sse');
  assert.equal(server.sockets.length, 1, 'stuck with a fast probe: one strike moves down');
  assert.ok(took >= 4000 && took < 5000, `${took} ms`);
  assert.ok(c.statuses.some((st) => /session stuck/.test(st.error || '')));
});

test('WebSocket: a session that stops answering pings is closed after 2 x pingInterval + margin, no strike', async () => {
  const c = client({ transport: 'auto' });
  await clock.until(c.open, 'open');
  assert.equal(c.lark.transport, 'ws');
  assert.equal(server.remembered(), 'ws');
  server.sockets[0].mode = 'silent';
  const quietFrom = clock.now;
  await clock.until(() => server.sockets.length === 2, 'a new session', 120000);
  const quiet = clock.now - quietFrom;
  assert.ok(quiet >= 55000 && quiet < 56000, `closed after ${quiet} ms`);
  await clock.until(c.open, 'open again');
  assert.equal(c.lark.transport, 'ws');
});
