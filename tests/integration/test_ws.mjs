// test_ws.mjs - the WebSocket bridge through lighttpd's mod_wstunnel, with
// a standard WebSocket client (npm "ws"): auth, send/sent, events, ack and
// delivered receipts, ping, bad lines, bad tokens, drain (API.md "WebSocket").

import WebSocket from 'ws';
import { assert, test } from './lib/harness.mjs';
import { Stack, sleep, waitFor } from './lib/stack.mjs';
import { Api, RawSSE, metrics, token } from './lib/client.mjs';

let s;

/** A session: collects the server's lines (frames may cut lines anywhere). */
class Session {
  constructor(url) {
    this.lines = [];
    this.raw = '';
    this.closed = false;
    this.ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws');
    this.ws.on('message', (d) => {
      this.raw += d.toString('utf8');
      let i;
      while ((i = this.raw.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(this.raw.slice(0, i)));
        this.raw = this.raw.slice(i + 1);
      }
    });
    this.ws.on('close', () => { this.closed = true; });
    this.ws.on('error', () => { this.closed = true; });
    this.open = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
  }
  send(obj) { this.ws.send((typeof obj === 'string' ? obj : JSON.stringify(obj)) + '\n'); }
  async until(pred, what, limit = 10000) {
    await waitFor(() => pred(this), what, limit, 10);
  }
  of(type) { return this.lines.filter((l) => l.type === type); }
  events() { return this.lines.filter((l) => typeof l.seq === 'number'); }
  close() { this.ws.terminate(); }
}

async function authed(user, since = 0) {
  const w = new Session(s.url);
  await w.open;
  w.send({ type: 'auth', token: token(user), since });
  return w;
}

test('start', async () => {
  s = await new Stack().start();
});

test('auth, then the backlog and live events as ASCII-only lines', async () => {
  const alice = new Api(s.url, 'ws-alice');
  await alice.send('ws-bob', 'before the session');
  const w = await authed('ws-bob');
  await w.until((x) => x.events().length === 1, 'the backlog');
  // API.md: a good auth is answered {"type": "hello"}, before any event
  assert.deepEqual(w.lines[0], { type: 'hello' });
  await alice.send('ws-bob', 'live: héllo ✓ 漢字 🙂');
  await w.until((x) => x.events().length === 2, 'a live event');
  const ev = w.events();
  assert.deepEqual(ev.map((e) => e.seq), [1, 2]);
  assert.equal(ev[1].type, 'message');
  assert.equal(ev[1].data.body, 'live: héllo ✓ 漢字 🙂');
  assert.ok(/^[\x00-\x7f]*$/.test(w.rawAll ?? JSON.stringify(w.lines).replace(/[^\x00-\x7f]/g, '')));
  const m = await metrics(s.url);
  assert.equal(m['lark_held_connections{transport="ws"}'], 1);
  w.close();
  await waitFor(async () => (await metrics(s.url))['lark_held_connections{transport="ws"}'] === 0, 'freed');
});

test('the server writes only ASCII, non-ASCII as \\u escapes', async () => {
  const w = new Session(s.url);
  let raw = '';
  w.ws.on('message', (d) => { raw += d.toString('latin1'); });
  await w.open;
  w.send({ type: 'auth', token: token('ws-ascii'), since: 0 });
  await new Api(s.url, 'ws-x').send('ws-ascii', 'ünïcødé 🙂');
  await w.until((x) => x.events().length === 1, 'event');
  assert.ok(/^[\x00-\x7f]*$/.test(raw), 'only ASCII bytes on the wire');
  assert.match(raw, /\\u00fc|\\u00FC/);
  assert.equal(w.events()[0].data.body, 'ünïcødé 🙂');
  w.close();
});

test('send is answered by sent; a retry is idempotent; the message type travels as msg_type', async () => {
  const w = await authed('ws-carl');
  await sleep(100);
  w.send({ type: 'send', to: 'ws-dana', body: 'from a socket', client_msg_id: 'ws-1' });
  w.send({ type: 'send', to: 'ws-dana', body: 'from a socket', client_msg_id: 'ws-1' });
  w.send({ type: 'send', to: 'ws-dana', body: 'https://x/y.png', msg_type: 'image', client_msg_id: 'ws-2' });
  await w.until((x) => x.of('sent').length === 3, 'three sent');
  const [a, b, c] = w.of('sent');
  assert.equal(a.client_msg_id, 'ws-1');
  assert.equal(a.message.body, 'from a socket');
  assert.equal(a.message.type, 'text');
  assert.deepEqual(b.message, a.message, 'the retry returns the original');
  assert.equal(c.message.type, 'image');
  assert.equal(c.message.seq, 2);
  const h = await new Api(s.url, 'ws-dana').get(`/v1/conversations/${a.message.conversation_id}/messages`);
  assert.equal(h.json.messages.length, 2, 'stored once');
  // the sender's own session gets the events too (other devices stay in sync)
  await w.until((x) => x.events().length === 2, 'own events');
  w.close();
});

test('ack makes messages delivered (receipt to the sender); read and typing work', async () => {
  const eve = new Api(s.url, 'ws-eve');
  const sent = await eve.send('ws-finn', 'please ack');
  const conv = sent.json.conversation_id;
  const sse = new RawSSE(s.url, '/v1/events?since=1', { tok: eve.tok });
  await sse.ready;
  const w = await authed('ws-finn');
  await w.until((x) => x.events().length === 1, 'the message');
  w.send({ type: 'ack', seq: 1 });
  await sse.until((x) => x.stored().some((e) => e.event === 'receipt'), 'delivered receipt');
  const rec = sse.stored().find((e) => e.event === 'receipt').json.data;
  assert.deepEqual(rec, { conversation_id: conv, user: 'ws-finn', status: 'delivered', up_to: 1 });
  w.send({ type: 'read', conversation_id: conv, seq: 1 });
  await sse.until((x) => x.stored().some((e) => e.json.data.status === 'read'), 'read receipt');
  w.send({ type: 'typing', conversation_id: conv });
  await sse.until((x) => x.events.some((e) => e.event === 'typing'), 'typing');
  // typing to the socket: another member types
  await eve.post(`/v1/conversations/${conv}/typing`);
  await w.until((x) => x.of('typing').length === 1, 'typing line');
  assert.deepEqual(w.of('typing')[0], { type: 'typing', data: { conversation_id: conv, user: 'ws-eve' } });
  assert.equal(w.of('error').length, 0, JSON.stringify(w.of('error')));
  sse.close();
  w.close();
});

test('ping gets pong; bad lines get error lines and the session goes on', async () => {
  const w = await authed('ws-gus');
  await sleep(100);
  w.send({ type: 'ping' });
  w.send('this is not json');
  w.send('[1,2,3]');
  w.send('{"type":"send","to":"x","to":"y","body":"dup"}');
  w.send('{"no":"type"}');
  w.send({ type: 'teleport' });
  w.send({ type: 'send', to: 'bad id!', body: 'x' });
  w.send({ type: 'send', to: 'ws-hal', body: '', client_msg_id: 'empty' });
  w.send({ type: 'ack', seq: 'x' });
  w.send({ type: 'read', conversation_id: 'c_nope', seq: 1 });
  w.send({ type: 'auth', token: token('ws-gus') });
  w.send({ type: 'ping' });
  await w.until((x) => x.of('pong').length === 2, 'the second pong');
  const codes = w.of('error').map((e) => e.error.code);
  assert.deepEqual(codes, ['invalid_json', 'invalid_json', 'invalid_json', 'missing_field', 'unknown_type',
    'invalid_field', 'invalid_field', 'wrong_type', 'not_found', 'conflict']);
  const empty = w.of('error').find((e) => e.client_msg_id === 'empty');
  assert.equal(empty.command, 'send');
  assert.equal(w.closed, false);
  w.close();
});

test('sends over the rate limit get rate_limited errors with retry_after', async () => {
  // 1 per second with a burst of 5: ten quick sends cannot all fit
  const t = await new Stack({ LARK_SEND_RATE: '1', LARK_SEND_BURST: '5' }).start();
  try {
    const w = new Session(t.url);
    await w.open;
    w.send({ type: 'auth', token: token('ws-flood'), since: 0 });
    for (let i = 0; i < 10; i++) w.send({ type: 'send', to: 'ws-sink', body: `f${i}`, client_msg_id: `f${i}` });
    await w.until((x) => x.of('sent').length + x.of('error').length === 10, 'ten answers');
    const limited = w.of('error').filter((e) => e.error.code === 'rate_limited');
    assert.ok(limited.length >= 1, 'ten quick sends exceed the burst of 5');
    assert.ok(limited[0].retry_after >= 1);
    assert.equal(limited[0].command, 'send');
    assert.ok(w.of('sent').length >= 5);
    w.close();
  } finally {
    await t.stop();
  }
});

test('a bad token, or no auth first, gets an error and the session closed', async () => {
  const cases = [
    [{ type: 'auth', token: token('ws-x', { secret: 'wrong-secret-wrong-secret' }) }, 'invalid_token'],
    [{ type: 'auth', token: token('ws-x', { exp: Math.floor(Date.now() / 1000) - 5 }) }, 'token_expired'],
    [{ type: 'auth' }, 'missing_token'],
    [{ type: 'ping' }, 'missing_token'],
  ];
  for (const [line, code] of cases) {
    const w = new Session(s.url);
    await w.open;
    w.send(line);
    await w.until((x) => x.closed, `close after ${code}`);
    assert.equal(w.of('error')[0].error.code, code);
  }
});

test('a line over the request limit closes the session with an error', async () => {
  const w = await authed('ws-big');
  await sleep(100);
  w.send('{"type":"send","to":"ws-x","body":"' + 'a'.repeat(70 * 1024) + '"}');
  await w.until((x) => x.closed, 'closed');
  assert.equal(w.of('error').pop().error.code, 'request_too_large');
});

test('resume: since= skips what the client has, and acknowledges it', async () => {
  const a = new Api(s.url, 'ws-ivy');
  for (let i = 1; i <= 5; i++) await a.send('ws-jon', `r${i}`);
  const w = await authed('ws-jon', 3);
  await w.until((x) => x.events().length === 2, 'two events');
  assert.deepEqual(w.events().map((e) => e.seq), [4, 5]);
  w.close();
  // The acknowledgement is off the durable path (it is written after the
  // session's catch-up, not before): it becomes visible shortly after, so
  // look for it a bounded number of times.
  let seqs = [];
  for (let i = 0; i < 50; i++) {
    const p = await new Api(s.url, 'ws-jon').poll('?timeout=0');
    seqs = p.json.events.map((e) => e.seq);
    if (seqs[0] === 4) break;
    await sleep(100);
  }
  assert.deepEqual(seqs, [4, 5], 'since=3 was acknowledged');
});

test('a session that never authenticates is closed', async () => {
  const t = await new Stack({ LARK_WS_AUTH_TIMEOUT: '1' }).start();
  try {
    const w = new Session(t.url);
    await w.open;
    await w.until((x) => x.closed, 'auth timeout', 20000);
    assert.equal(w.of('error')[0].error.code, 'missing_token');
  } finally {
    await t.stop();
  }
});

test('stop: SIGTERM tells sessions to reconnect, then closes them', async () => {
  const w = await authed('ws-last');
  await sleep(100);
  s.larkd.kill('SIGTERM');
  await w.until((x) => x.closed, 'closed by the drain');
  const r = w.of('reconnect')[0];
  assert.equal(r.reason, 'draining');
  assert.ok(r.retry_ms >= 2000);
  await s.stop();
});
