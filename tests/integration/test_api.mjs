// test_api.mjs - every endpoint of the core service doing its job
// (API.md "Messages and conversations", "The inbox", "Operations").

import { assert, test } from './lib/harness.mjs';
import { Stack, sleep } from './lib/stack.mjs';
import { Api, RawSSE, metrics, request } from './lib/client.mjs';

let s;
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('start lighttpd + larkd', async () => {
  s = await new Stack({ LARK_CORS_ORIGINS: 'https://app.example' }).start();
});

test('healthz answers ok without a token', async () => {
  const r = await request(s.url, 'GET', '/v1/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
  assert.match(r.headers['content-type'], /^application\/json/);
});

test('a direct message is stored and returned with every field', async () => {
  const alice = new Api(s.url, 'alice');
  const r = await alice.send('bob', 'Hello!', { client_msg_id: 'b7f3-1', meta: { url: 'https://x/y.png' } });
  assert.equal(r.status, 201, r.body);
  const m = r.json;
  assert.match(m.id, UUID7);
  assert.match(m.conversation_id, /^c_[0-9a-f]{32}$/);
  assert.equal(m.seq, 1);
  assert.equal(m.sender, 'alice');
  assert.equal(m.client_msg_id, 'b7f3-1');
  assert.equal(m.type, 'text');
  assert.equal(m.body, 'Hello!');
  assert.deepEqual(m.meta, { url: 'https://x/y.png' });
  assert.match(m.created_at, TS);
  assert.ok(Math.abs(Date.parse(m.created_at) - Date.now()) < 60000);
});

test('the direct chat of a pair is the same whichever side starts it', async () => {
  const a = await new Api(s.url, 'carl').send('dana', 'one');
  const b = await new Api(s.url, 'dana').send('carl', 'two');
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  assert.equal(a.json.conversation_id, b.json.conversation_id);
  assert.deepEqual([a.json.seq, b.json.seq], [1, 2]);
  const c = await new Api(s.url, 'carl').send('erin', 'other pair');
  assert.notEqual(c.json.conversation_id, a.json.conversation_id);
});

test('a retry with the same client_msg_id returns the original, stored once', async () => {
  const u = new Api(s.url, 'retrier');
  const first = await u.send('target1', 'only once', { client_msg_id: 'same-id' });
  assert.equal(first.status, 201);
  const again = await u.send('target1', 'only once', { client_msg_id: 'same-id' });
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, first.json);
  // ten concurrent retries of a new id: one 201, nine 200, one message
  const rs = await Promise.all(Array.from({ length: 10 }, () =>
    u.send('target1', 'raced', { client_msg_id: 'race-id' })));
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
  assert.equal(new Set(rs.map((r) => r.json.id)).size, 1);
  const h = await u.get(`/v1/conversations/${first.json.conversation_id}/messages?limit=200`);
  assert.equal(h.json.messages.length, 2);
});

test('a member sends by conversation_id; others get 403, unknown ids 404', async () => {
  const f = await new Api(s.url, 'fred').send('gina', 'hi');
  const conv = f.json.conversation_id;
  const g = await new Api(s.url, 'gina').post('/v1/messages', { conversation_id: conv, body: 'by id' });
  assert.equal(g.status, 201);
  assert.equal(g.json.seq, 2);
  const outsider = await new Api(s.url, 'mallory').post('/v1/messages', { conversation_id: conv, body: 'x' });
  assert.equal(outsider.status, 403);
  assert.equal(outsider.json.error.code, 'not_member');
  const unknown = await new Api(s.url, 'fred').post('/v1/messages',
    { conversation_id: 'c_' + '0'.repeat(32), body: 'x' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'not_found');
  const hist = await new Api(s.url, 'mallory').get(`/v1/conversations/${conv}/messages`);
  assert.equal(hist.status, 403);
  assert.equal(hist.json.error.code, 'not_member');
  assert.equal(hist.json.messages, undefined);
});

test('history pages both ways with has_more', async () => {
  const h = new Api(s.url, 'hanna');
  let conv;
  for (let i = 1; i <= 25; i++) {
    const r = await h.send('ivan', `m${i}`);
    assert.equal(r.status, 201);
    conv = r.json.conversation_id;
  }
  const seqs = (r) => r.json.messages.map((m) => m.seq);
  const base = `/v1/conversations/${conv}/messages`;
  let r = await h.get(`${base}?limit=10`);
  assert.deepEqual(seqs(r), [25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
  assert.equal(r.json.has_more, true);
  r = await h.get(`${base}?before=16&limit=10`);
  assert.deepEqual(seqs(r), [15, 14, 13, 12, 11, 10, 9, 8, 7, 6]);
  assert.equal(r.json.has_more, true);
  r = await h.get(`${base}?before=6&limit=10`);
  assert.deepEqual(seqs(r), [5, 4, 3, 2, 1]);
  assert.equal(r.json.has_more, false);
  r = await h.get(`${base}?after=0&limit=10`);
  assert.deepEqual(seqs(r), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(r.json.has_more, true);
  r = await new Api(s.url, 'ivan').get(`${base}?after=20`);
  assert.deepEqual(seqs(r), [21, 22, 23, 24, 25]);
  assert.equal(r.json.has_more, false);
  assert.equal(r.json.messages[0].body, 'm21');
  r = await h.get(`${base}`);
  assert.equal(r.json.messages.length, 25); // default limit 50
  r = await h.get(`${base}?after=5&before=9`);
  assert.deepEqual(seqs(r), [6, 7, 8]);
  r = await h.get(`/v1/conversations/c_nope/messages`);
  assert.equal(r.status, 404);
});

test('SSE: retry first, then the backlog, then live events with id = inbox seq', async () => {
  const jack = new Api(s.url, 'jack');
  const kim = new Api(s.url, 'kim');
  await jack.send('kim', 'before connect 1');
  await jack.send('kim', 'before connect 2');
  const sse = new RawSSE(s.url, '/v1/events?since=0', { tok: kim.tok });
  await sse.ready;
  assert.equal(sse.status, 200);
  assert.match(sse.headers['content-type'], /^text\/event-stream/);
  assert.equal(sse.headers['cache-control'], 'no-cache');
  assert.equal(sse.headers['x-accel-buffering'], 'no');
  await sse.until((x) => x.stored().length >= 2, 'backlog');
  assert.ok(sse.raw.startsWith('retry: '), 'retry: comes first');
  await jack.send('kim', 'live 3');
  await kim.send('jack', 'own message 4');
  await sse.until((x) => x.stored().length >= 4, 'live events');
  const ev = sse.stored();
  assert.deepEqual(ev.map((e) => e.id), ['1', '2', '3', '4']);
  assert.deepEqual(ev.map((e) => e.event), ['message', 'message', 'message', 'message']);
  assert.deepEqual(ev.map((e) => e.json.seq), [1, 2, 3, 4]);
  assert.deepEqual(ev.map((e) => e.json.data.body),
    ['before connect 1', 'before connect 2', 'live 3', 'own message 4']);
  assert.equal(ev[3].json.data.sender, 'kim', 'the sender gets its own message too');
  assert.equal(ev[0].json.type, 'message');
  sse.close();
});

test('SSE resumes after Last-Event-ID with no loss and no duplicate', async () => {
  const a = new Api(s.url, 'leo');
  const b = new Api(s.url, 'mia');
  for (let i = 1; i <= 5; i++) await a.send('mia', `r${i}`);
  const first = new RawSSE(s.url, '/v1/events?since=0', { tok: b.tok });
  await first.until((x) => x.stored().length >= 5, 'first five');
  first.close();
  const last = first.stored()[2].id; // the client processed up to 3
  for (let i = 6; i <= 8; i++) await a.send('mia', `r${i}`);
  // the URL still says since=0, as a reconnecting EventSource's does
  const second = new RawSSE(s.url, '/v1/events?since=0', { tok: b.tok, headers: { 'Last-Event-ID': last } });
  await second.until((x) => x.stored().length >= 5, 'resumed events');
  await sleep(200);
  assert.deepEqual(second.stored().map((e) => e.json.data.body), ['r4', 'r5', 'r6', 'r7', 'r8']);
  second.close();
  // Last-Event-ID acknowledged 3: a stream with no position starts after it
  const third = new RawSSE(s.url, '/v1/events', { tok: b.tok });
  await third.until((x) => x.stored().length >= 5, 'events after the ack');
  assert.equal(third.stored()[0].id, '4');
  third.close();
});

test('SSE ?padding=1 sends a 2 KiB comment first', async () => {
  const u = new Api(s.url, 'padded');
  const sse = new RawSSE(s.url, '/v1/events?padding=1', { tok: u.tok });
  await sse.until((x) => x.retry !== null, 'retry after padding');
  assert.ok(sse.raw.startsWith(':'), 'the stream opens with a comment');
  assert.ok(sse.raw.indexOf('\n\n') >= 2046, 'the comment is 2 KiB');
  sse.close();
});

test('long-poll answers at once when events exist, next resumes', async () => {
  const a = new Api(s.url, 'nina');
  const b = new Api(s.url, 'otto');
  await a.send('otto', 'p1');
  await a.send('otto', 'p2');
  let r = await b.poll('?since=0&timeout=20');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.events.map((e) => e.data.body), ['p1', 'p2']);
  assert.equal(r.json.next, 2);
  assert.deepEqual(r.json.events.map((e) => e.seq), [1, 2]);
  r = await b.poll('?since=1&timeout=5&limit=1');
  assert.deepEqual(r.json.events.map((e) => e.seq), [2]);
  assert.equal(r.json.next, 2);
  r = await b.poll('?since=2&timeout=0');
  assert.deepEqual(r.json, { events: [], next: 2 });
});

test('a held long-poll is woken by a message, not by its timeout', async () => {
  const a = new Api(s.url, 'paul');
  const b = new Api(s.url, 'quinn');
  const t0 = Date.now();
  const held = b.poll('?since=0&timeout=30');
  await sleep(300);
  const sent = await a.send('quinn', 'wake up');
  const r = await held;
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 < 25000, 'answered by the message, long before the timeout');
  assert.equal(r.json.events.length, 1);
  assert.equal(r.json.events[0].data.id, sent.json.id);
  assert.equal(r.json.next, 1);
});

test('a held long-poll with nothing to say answers empty at its timeout', async () => {
  const b = new Api(s.url, 'rosa');
  const r = await b.poll('?timeout=1');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { events: [], next: 0 });
});

test('since= on a poll acknowledges; POST /v1/ack too; no position starts after the ack', async () => {
  const a = new Api(s.url, 'sam');
  const b = new Api(s.url, 'tess');
  for (let i = 1; i <= 4; i++) await a.send('tess', `k${i}`);
  await b.poll('?since=2&timeout=0');
  let r = await b.poll('?timeout=0');
  assert.deepEqual(r.json.events.map((e) => e.seq), [3, 4], 'starts after the acknowledged 2');
  r = await b.post('/v1/ack', { seq: 3 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { acked: 3 });
  r = await b.poll('?timeout=0');
  assert.deepEqual(r.json.events.map((e) => e.seq), [4]);
  r = await b.post('/v1/ack', { seq: 1 });
  assert.deepEqual(r.json, { acked: 3 }, 'acks never move backwards');
  r = await b.post('/v1/ack', { seq: 99 });
  assert.deepEqual(r.json, { acked: 4 }, 'acks are clamped to the newest event');
});

test('seqs stay gapless under concurrent senders', async () => {
  const sink = 'sink';
  const senders = Array.from({ length: 20 }, (_, i) => new Api(s.url, `conc${i}`));
  const replies = await Promise.all(senders.flatMap((u) =>
    Array.from({ length: 10 }, (_, j) => u.send(sink, `from ${u.user} #${j}`))));
  assert.ok(replies.every((r) => r.status === 201), replies.find((r) => r.status !== 201)?.body);
  // per pair: conversation seqs 1..10
  for (const u of senders) {
    const mine = replies.filter((r) => r.json.sender === u.user).map((r) => r.json.seq).sort((x, y) => x - y);
    assert.deepEqual(mine, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }
  // the sink's inbox: 1..200, each message once
  const b = new Api(s.url, sink);
  const r = await b.poll('?since=0&timeout=0&limit=1000');
  assert.deepEqual(r.json.events.map((e) => e.seq), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(new Set(r.json.events.map((e) => e.data.id)).size, 200);
  // both sides of one pair at once: one order for both
  const x = new Api(s.url, 'duo1');
  const y = new Api(s.url, 'duo2');
  const both = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? x : y).send(i % 2 ? 'duo2' : 'duo1', `d${i}`)));
  assert.deepEqual(both.map((q) => q.json.seq).sort((p, q) => p - q), Array.from({ length: 30 }, (_, i) => i + 1));
});

test('strings that look like SQL round-trip verbatim', async () => {
  const u = new Api(s.url, 'o.brien-x_y@example.org');
  const nasty = [
    "'; DROP TABLE messages; --",
    "Robert'); DROP TABLE users;--",
    '" OR 1=1 --',
    "1' UNION SELECT id, body FROM messages WHERE '1'='1",
    '%27%20OR%20%271%27%3D%271 \\x00? \\\\',
    'multi\nline\r\n\ttabbed',
    'ünïcødé ✓ 漢字 🙂 \u2028 \u200b',
  ];
  const sent = [];
  for (const [i, body] of nasty.entries()) {
    const r = await u.send('sql.target', body, { client_msg_id: `'; DELETE FROM inbox; -- ${i}`, meta: { q: body } });
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json.body, body);
    sent.push(r.json);
  }
  const h = await u.get(`/v1/conversations/${sent[0].conversation_id}/messages?after=0`);
  assert.deepEqual(h.json.messages.map((m) => m.body), nasty);
  assert.deepEqual(h.json.messages.map((m) => m.meta.q), nasty);
  assert.deepEqual(h.json.messages.map((m) => m.client_msg_id), nasty.map((_, i) => `'; DELETE FROM inbox; -- ${i}`));
  assert.equal(h.json.messages[0].sender, 'o.brien-x_y@example.org');
});

test('sends over the per-user rate get 429 with Retry-After', async () => {
  // 1 per second with a burst of 5: ten quick sends cannot all fit, however
  // slow the server (under valgrind, say) sends them
  const t = await new Stack({ LARK_SEND_RATE: '1', LARK_SEND_BURST: '5' }).start();
  try {
    const u = new Api(t.url, 'chatty');
    const rs = [];
    for (let i = 0; i < 10; i++) rs.push(await u.send('listener', `spam ${i}`));
    const limited = rs.filter((r) => r.status === 429);
    assert.ok(rs.slice(0, 5).every((r) => r.status === 201), 'the first 5 fit the burst');
    assert.ok(limited.length >= 1, 'ten quick sends exceed the burst of 5');
    assert.equal(limited[0].json.error.code, 'rate_limited');
    assert.ok(Number(limited[0].headers['retry-after']) >= 1);
    const other = await new Api(t.url, 'quiet').send('listener', 'unaffected');
    assert.equal(other.status, 201, 'limits are per user');
  } finally {
    await t.stop();
  }
});

test('unknown routes 404 and wrong methods 405 with Allow, both with error bodies', async () => {
  const u = new Api(s.url, 'router');
  let r = await u.get('/v1/nope');
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
  r = await u.get('/v1/messages');
  assert.equal(r.status, 405);
  assert.equal(r.json.error.code, 'method_not_allowed');
  assert.equal(r.headers.allow, 'POST');
  r = await request(s.url, 'DELETE', '/v1/events', { tok: u.tok });
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET, HEAD');
});

test('CORS: configured origins get the headers and preflights, others do not', async () => {
  const u = new Api(s.url, 'corsy');
  let r = await u.get('/v1/healthz', { headers: { Origin: 'https://app.example' } });
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  r = await u.get('/v1/healthz', { headers: { Origin: 'https://evil.example' } });
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  r = await request(s.url, 'OPTIONS', '/v1/messages', { headers: {
    Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization, content-type' } });
  assert.equal(r.status, 204);
  assert.match(r.headers['access-control-allow-methods'], /POST/);
  assert.match(r.headers['access-control-allow-headers'], /Authorization/);
});

test('/metrics is Prometheus text with the counters of what happened', async () => {
  const m = await metrics(s.url);
  assert.ok(m['lark_messages_sent_total'] > 0);
  assert.ok('lark_held_connections{transport="sse"}' in m);
  assert.ok(m['lark_http_responses_total{status="201"}'] > 0);
  assert.ok(m['lark_delivery_latency_seconds_count'] > 0);
});

test('stop: larkd drains and exits cleanly', async () => {
  await s.stop();
});

test('/metrics is refused to addresses not configured', async () => {
  const t = await new Stack({ LARK_METRICS_ALLOW: '10.9.9.9' }).start();
  try {
    const r = await request(t.url, 'GET', '/metrics');
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'forbidden');
  } finally {
    await t.stop();
  }
});
