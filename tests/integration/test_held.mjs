// test_held.mjs - at most max_held_per_user (default 8) held connections
// per user, SSE, long-poll and WebSocket together (API.md "Operations";
// issue 13, finding 3: one user held 450 long-polls or 400 SSE streams).
// One more is refused - 429 too_many_connections with Retry-After, or on
// a WebSocket an error line with retry_after and the close - and nobody
// is evicted (fcgi/heldcap_local.c says why). A slot is free again as soon as its
// connection stops receiving: a closed stream once larkd hears of it
// (lighttpd closes larkd's side when a write to the client fails, so
// within a keep-alive interval: 1 s here), an answered long-poll before
// its client's next poll.

import WebSocket from 'ws';
import { assert, test } from './lib/harness.mjs';
import { Stack, waitFor } from './lib/stack.mjs';
import { Api, RawSSE, metrics, token } from './lib/client.mjs';

const CAP = 8; // the default of max_held_per_user
let s;

/** An SSE stream of user that got its hello (status 200). */
async function stream(user) {
  const x = new RawSSE(s.url, '/v1/events', { tok: token(user) });
  await x.ready;
  assert.equal(x.status, 200, `SSE of ${user}: ${x.status}`);
  await x.until((y) => y.hellos.length === 1, 'hello');
  return x;
}

/** A refused request: 429, too_many_connections, Retry-After. */
function refused(status, headers, json, what) {
  assert.equal(status, 429, `${what}: ${status}`);
  assert.equal(json && json.error && json.error.code, 'too_many_connections', `${what}: ${JSON.stringify(json)}`);
  assert.ok(Number(headers['retry-after']) >= 1, `${what}: Retry-After`);
}

/** The 429 body of an SSE request RawSSE received. */
async function sseRefused(user, what) {
  const x = new RawSSE(s.url, '/v1/events', { tok: token(user) });
  await x.ready;
  await x.until((y) => y.closed, 'the refusal to end');
  refused(x.status, x.headers, JSON.parse(x.raw), what);
}

/** A WebSocket session's first line after auth, and whether it closed. */
async function wsAuth(user) {
  const ws = new WebSocket(s.url.replace(/^http/, 'ws') + '/v1/ws');
  const lines = [];
  let raw = '';
  let closed = false;
  ws.on('message', (d) => {
    raw += d.toString('utf8');
    let i;
    while ((i = raw.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(raw.slice(0, i)));
      raw = raw.slice(i + 1);
    }
  });
  ws.on('close', () => { closed = true; });
  ws.on('error', () => { closed = true; });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'auth', token: token(user) }) + '\n');
  await waitFor(() => lines.length > 0, 'the answer to auth');
  return { ws, lines, closed: () => closed };
}

test('start', async () => {
  s = await new Stack({ LARK_SSE_KEEPALIVE: '1' }).start();
});

test(`the ${CAP + 1}th held connection of a user is refused, whatever its transport; nobody is evicted`, async () => {
  const streams = [];
  for (let i = 0; i < CAP; i++) streams.push(await stream('cap-full'));
  const before = await metrics(s.url);
  await sseRefused('cap-full', 'SSE beyond the cap');
  const poll = await new Api(s.url, 'cap-full').poll('?timeout=5');
  refused(poll.status, poll.headers, poll.json, 'long-poll beyond the cap');
  const w = await wsAuth('cap-full');
  assert.equal(w.lines[0].type, 'error', JSON.stringify(w.lines[0]));
  assert.equal(w.lines[0].error.code, 'too_many_connections');
  assert.ok(w.lines[0].retry_after >= 1, 'retry_after on the WebSocket refusal');
  await waitFor(() => w.closed(), 'the refused session to close');
  // a poll answered at once is not held, and counts nothing
  const now = await new Api(s.url, 'cap-full').poll('?timeout=0');
  assert.equal(now.status, 200, now.body);
  // the eight are all still there, and another user is not affected
  for (const x of streams) assert.ok(!x.closed, 'a held stream was evicted');
  const other = await stream('cap-other');
  const after = await metrics(s.url);
  for (const t of ['sse', 'poll', 'ws'])
    assert.equal(after[`lark_held_refused_total{transport="${t}"}`] - (before[`lark_held_refused_total{transport="${t}"}`] || 0), 1, t);
  for (const x of [...streams, other]) x.close();
});

test('a closed stream gives its slot back once larkd hears of it', async () => {
  const streams = [];
  for (let i = 0; i < CAP; i++) streams.push(await stream('cap-close'));
  await sseRefused('cap-close', 'SSE beyond the cap');
  streams.pop().close(); // the client goes: lighttpd closes larkd's side
  let next = null;
  await waitFor(async () => {
    const x = new RawSSE(s.url, '/v1/events', { tok: token('cap-close') });
    await x.ready;
    if (x.status === 200) next = x;
    else x.close();
    return next;
  }, 'a slot after a stream closed', 10000, 100);
  streams.push(next);
  for (const x of streams) x.close();
});

test('SSE, long-poll and WebSocket share the cap; answered long-polls free their slot before the next poll', async () => {
  const user = 'cap-mix';
  const api = new Api(s.url, user);
  // 5 streams and a WebSocket session: 6 held
  const streams = [];
  for (let i = 0; i < 5; i++) streams.push(await stream(user));
  const w = await wsAuth(user);
  assert.deepEqual(w.lines[0], { type: 'hello' });
  // two clients long-polling in turn (1 s each, three rounds): 8 held while
  // they wait, never refused - each answered poll frees its slot first
  const loop = async () => {
    for (let round = 0; round < 3; round++) {
      const r = await api.poll('?timeout=1');
      assert.equal(r.status, 200, `poll round ${round}: ${r.status} ${r.body}`);
    }
  };
  const loops = [loop(), loop()];
  await waitFor(async () => (await metrics(s.url))['lark_held_connections{transport="poll"}'] >= 2, 'two polls held');
  await sseRefused(user, 'SSE while two polls are held');
  await Promise.all(loops);
  // between polls nothing is held for them: two streams fit again
  streams.push(await stream(user), await stream(user));
  for (const x of streams) x.close();
  w.ws.terminate();
});

test('stop', async () => {
  await s.stop();
});
