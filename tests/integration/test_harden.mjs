// test_harden.mjs - issue 13 (hardening), part A: each finding reproduced
// as an attacker would, now refused.
//
//   finding 1  group creation and other writes that fan out: per-user
//              quotas (429 + Retry-After) and stored events that carry what
//              changed, not the member list
//   finding 2  tokens out of URLs and logs: single-use tickets; lighttpd's
//              logs hold neither a token nor a ticket still valid, even
//              after larkd dies with streams held
//   finding 4  CORS: "*" without credentials, named origins with, "null"
//              never
//   finding 5  presence visibility (shared / all), duplicate claim names,
//              security headers on API answers, pages and lighttpd's own
//              errors
//
// One stack with small quotas serves most tests; the log test and the
// visibility "all" test start their own.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { Stack, backend, freshDb, sleep, waitFor } from './lib/stack.mjs';
import { Api, RawSSE, request, token } from './lib/client.mjs';
import { Pair } from './lib/scale.mjs';

let s;

const QUOTAS = {
  LARK_GROUP_PER_MIN: '6', LARK_GROUP_BURST: '3',
  LARK_MEMBER_PER_MIN: '6', LARK_MEMBER_BURST: '3',
  LARK_READ_PER_MIN: '6', LARK_READ_BURST: '3',
  LARK_DEVICE_PER_MIN: '6', LARK_DEVICE_BURST: '2',
  LARK_TICKET_PER_MIN: '600', LARK_TICKET_BURST: '50',
  LARK_TICKET_TTL: '1',
  LARK_CORS_ORIGINS: '*, https://app.example, null',
};

test('start (small quotas, 1 s tickets, CORS "*" and one named origin)', async () => {
  s = await new Stack(QUOTAS).start();
});

/** status 429 with Retry-After and the rate_limited code */
function limited(r, what) {
  assert.equal(r.status, 429, `${what}: ${r.status} ${r.body}`);
  assert.equal(r.json.error.code, 'rate_limited');
  assert.ok(Number(r.headers['retry-after']) >= 1, `${what}: Retry-After ${r.headers['retry-after']}`);
}

// ---- finding 1: writes that fan out -----------------------------------------

test('finding 1: group creation is rate-limited (was 55 groups of 500 in 10 s, all 201)', async () => {
  const m = new Api(s.url, 'q-mallory');
  const members = Array.from({ length: 20 }, (_, i) => `q-victim${i}`);
  for (let i = 0; i < 3; i++)
    assert.equal((await m.post('/v1/conversations', { type: 'group', title: `g${i}`, members })).status, 201);
  limited(await m.post('/v1/conversations', { type: 'group', title: 'more', members }), 'a 4th group');
  // another user's budget is its own
  assert.equal((await new Api(s.url, 'q-alice').post('/v1/conversations', { type: 'group', members })).status, 201);
});

test('finding 1: the stored conversation/member events carry what changed, not the member list', async () => {
  const admin = new Api(s.url, 'e-admin');
  const members = Array.from({ length: 400 }, (_, i) => `e-member-with-a-long-name-${i}`);
  const g = await admin.post('/v1/conversations', { type: 'group', title: 'Big', members });
  assert.equal(g.status, 201, g.body);
  assert.equal(g.json.members.length, 401, 'the answer still lists the members');
  const p = await new Api(s.url, members[7]).poll('?since=0&timeout=0');
  const ev = p.json.events.find((e) => e.type === 'conversation');
  assert.deepEqual(ev.data, { conversation_id: g.json.id, action: 'created', type: 'group', title: 'Big',
    by: 'e-admin', member_count: 401 });
  // ~12 KB per inbox row before (400 members x ~30 bytes), under 200 now
  assert.ok(JSON.stringify(ev).length < 200, JSON.stringify(ev));
  const add = await admin.post(`/v1/conversations/${g.json.id}/members`, { user: 'e-late' });
  assert.equal(add.status, 201);
  const q = await new Api(s.url, 'e-late').poll('?since=0&timeout=0');
  assert.deepEqual(q.json.events.map((e) => e.data), [{ conversation_id: g.json.id, action: 'added',
    user: 'e-late', by: 'e-admin', title: 'Big', member_count: 402 }]);
  // clients ask for the members
  const full = await new Api(s.url, 'e-late').get(`/v1/conversations/${g.json.id}`);
  assert.equal(full.json.members.length, 402);
});

test('finding 1: member changes, read receipts and device registrations are rate-limited too', async () => {
  const admin = new Api(s.url, 'r-admin');
  const g = (await admin.post('/v1/conversations', { type: 'group', members: ['r-bob'] })).json;
  const base = `/v1/conversations/${g.id}/members`;
  // adds and removals share one budget (burst 3; the creation had its own)
  assert.equal((await admin.post(base, { user: 'r-c1' })).status, 201);
  assert.equal((await admin.post(base, { user: 'r-c2' })).status, 201);
  assert.equal((await request(s.url, 'DELETE', `${base}/r-c1`, { tok: admin.tok })).status, 204);
  limited(await admin.post(base, { user: 'r-c3' }), 'a 4th member change');
  limited(await request(s.url, 'DELETE', `${base}/r-c2`, { tok: admin.tok }), 'a removal');
  // read receipts: n - 1 inbox rows each
  const bob = new Api(s.url, 'r-bob');
  for (let i = 1; i <= 4; i++) await admin.post('/v1/messages', { conversation_id: g.id, body: `m${i}` });
  for (let i = 1; i <= 3; i++) assert.equal((await bob.post(`/v1/conversations/${g.id}/read`, { seq: i })).status, 200);
  limited(await bob.post(`/v1/conversations/${g.id}/read`, { seq: 4 }), 'a 4th read receipt');
  // devices (burst 2)
  const dev = (i) => ({ platform: 'fcm', token: `tok-${i}`, app: 'com.example.chat' });
  assert.equal((await bob.post('/v1/devices', dev(1))).status, 201);
  assert.equal((await bob.post('/v1/devices', dev(2))).status, 201);
  limited(await bob.post('/v1/devices', dev(3)), 'a 3rd device');
});

// ---- finding 2: tickets -----------------------------------------------------

async function ticket(api) {
  const r = await request(s.url, 'POST', '/v1/tickets', { tok: api.tok, body: '' });
  assert.equal(r.status, 201, r.body);
  assert.match(r.json.ticket, /^[A-Za-z0-9_-]{40,200}$/);
  assert.match(r.json.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  return r.json.ticket;
}

test('finding 2: a ticket opens one SSE stream or poll, once, and only until it expires', async () => {
  const ann = new Api(s.url, 't-ann');
  const t1 = await ticket(ann);
  const sse = await new RawSSE(s.url, `/v1/events?ticket=${t1}`).ready;
  assert.equal(sse.status, 200);
  await ann.send('t-ben', 'over a ticket');
  await sse.until((x) => x.stored().some((e) => e.json.data.body === 'over a ticket'), 'the message');
  sse.close();
  // used: refused, on either route
  for (const p of ['/v1/events', '/v1/poll']) {
    const r = await request(s.url, 'GET', `${p}?ticket=${t1}&timeout=0`);
    assert.equal(r.status, 401, p);
    assert.equal(r.json.error.code, 'invalid_token');
  }
  const t2 = await ticket(ann);
  let r = await request(s.url, 'GET', `/v1/poll?since=0&timeout=0&ticket=${t2}`);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.events[0].data.body, 'over a ticket');
  // expired (ticket_ttl 1 s here), never used
  const t3 = await ticket(ann);
  await sleep(1100);
  r = await request(s.url, 'GET', `/v1/poll?timeout=0&ticket=${t3}`);
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'invalid_token');
  // forged: another user's name under a made-up signature, or one bit changed
  const raw = Buffer.from(await ticket(ann), 'base64url');
  raw[raw.length - 1] ^= 1;
  r = await request(s.url, 'GET', `/v1/poll?timeout=0&ticket=${raw.toString('base64url')}`);
  assert.equal(r.status, 401);
  for (const bad of ['', 'x', 'a'.repeat(300), '%00', token('t-ann')]) {
    r = await request(s.url, 'GET', `/v1/poll?timeout=0&ticket=${encodeURIComponent(bad)}`);
    assert.equal(r.status, 401, `ticket=${bad.slice(0, 20)}`);
  }
  // minting needs the token itself: neither a ticket nor no token mints one
  r = await request(s.url, 'POST', `/v1/tickets?ticket=${await ticket(ann)}`, { body: '' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'missing_token');
  // and ?access_token= keeps working (discouraged)
  r = await request(s.url, 'GET', `/v1/poll?timeout=0&access_token=${ann.tok}`);
  assert.equal(r.status, 200);
});

test('finding 2: a ticket opens a media download once (an <img> or a link cannot carry a header)', async () => {
  const ann = new Api(s.url, 't-media-ann');
  const bytes = Buffer.from('not really a PNG');
  let r = await request(s.url, 'POST', '/v1/media?name=p.png', { tok: ann.tok, body: bytes, headers: { 'Content-Type': 'image/png' } });
  assert.equal(r.status, 201, r.body);
  const id = r.json.media.id;
  const t = await ticket(ann);
  r = await request(s.url, 'GET', `/v1/media/${id}?ticket=${t}`);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, bytes.toString());
  assert.equal(r.headers['content-security-policy'], 'sandbox');
  r = await request(s.url, 'GET', `/v1/media/${id}?ticket=${t}`);
  assert.equal(r.status, 401, 'used');
  assert.equal(r.json.error.code, 'invalid_token');
  // the ticket's user is the token's: another user's ticket finds nothing
  r = await request(s.url, 'GET', `/v1/media/${id}?ticket=${await ticket(new Api(s.url, 't-media-eve'))}`);
  assert.equal(r.status, 404);
});

test('finding 2: tickets used at once by many connections: each one opens exactly one', async () => {
  const ann = new Api(s.url, 't-race');
  const t = await ticket(ann);
  const rs = await Promise.all(Array.from({ length: 8 }, () =>
    request(s.url, 'GET', `/v1/poll?timeout=0&ticket=${t}`)));
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 401, 401, 401, 401, 401, 401, 401]);
});

const TWO = 'finding 2: a ticket minted on one larkd is used once on another (two hosts, one PostgreSQL)';
if (backend !== 'postgres') skip(TWO, 'PostgreSQL only (two larkd on one database); runs with --backend=postgres');
else test(TWO, async () => {
  const p = new Pair((await freshDb('postgres')).LARK_DB);
  cleanup(() => p.stop());
  await p.start();
  // conf/lighttpd-two.conf: the POST goes to larkd A, the GETs to B
  const ann = new Api(p.split.url, 'two-ann');
  const mint = async (base) => (await request(base, 'POST', '/v1/tickets', { tok: ann.tok, body: '' })).json.ticket;
  const t = await mint(p.split.url);
  let r = await request(p.split.url, 'GET', `/v1/poll?timeout=0&ticket=${t}`);
  assert.equal(r.status, 200, `B took A's ticket: ${r.body}`);
  r = await request(p.onlyA.url, 'GET', `/v1/poll?timeout=0&ticket=${t}`);
  assert.equal(r.status, 401, 'and A knows it was used on B');
  // minted on B, used on A; the same ticket at once on both: one wins
  const u = await mint(p.onlyB.url);
  assert.equal((await request(p.onlyA.url, 'GET', `/v1/poll?timeout=0&ticket=${u}`)).status, 200);
  const v = await mint(p.onlyA.url);
  const both = await Promise.all([p.onlyA.url, p.onlyB.url, p.onlyA.url, p.onlyB.url].map((base) =>
    request(base, 'GET', `/v1/poll?timeout=0&ticket=${v}`)));
  assert.deepEqual(both.map((x) => x.status).sort(), [200, 401, 401, 401]);
});

// ---- finding 4: CORS ----------------------------------------------------------

test('finding 4: CORS - "*" without credentials, a named origin with, "null" never', async () => {
  const tok = token('c-ann');
  const get = (origin) => request(s.url, 'GET', '/v1/conversations', { tok, headers: { Origin: origin } });
  let r = await get('https://evil.example');
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.equal(r.headers['access-control-allow-credentials'], undefined, 'never with "*"');
  r = await get('https://app.example');
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.match(r.headers.vary, /Origin/);
  r = await get('null'); // listed, and still refused
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers['access-control-allow-credentials'], undefined);
  // the cookie-authenticated stream, from a site that is not listed
  const sse = await new RawSSE(s.url, '/v1/events', { headers: { Origin: 'https://evil.example', Cookie: `lark_token=${tok}` } }).ready;
  assert.equal(sse.status, 200);
  assert.equal(sse.headers['access-control-allow-origin'], '*');
  assert.equal(sse.headers['access-control-allow-credentials'], undefined);
  sse.close();
  // preflights alike
  const pre = (origin) => request(s.url, 'OPTIONS', '/v1/messages', { headers: {
    Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' } });
  r = await pre('https://evil.example');
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.equal(r.headers['access-control-allow-credentials'], undefined);
  assert.match(r.headers['access-control-allow-methods'], /POST/);
  r = await pre('https://app.example');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  r = await pre('null');
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers['access-control-allow-methods'], undefined);
});

// ---- finding 5: presence, claims, headers ---------------------------------------

test('finding 5: presence_visibility = shared: strangers read offline, watching them yields nothing', async () => {
  const [spy, target, friend] = ['v-spy', 'v-target', 'v-friend'].map((u) => new Api(s.url, u));
  await target.send('v-friend', 'we share a chat');
  // both watch the target while it is offline
  const ss = await new RawSSE(s.url, '/v1/events', { tok: spy.tok }).ready;
  const sf = await new RawSSE(s.url, '/v1/events', { tok: friend.tok }).ready;
  let r = await spy.post('/v1/presence/watch', { users: ['v-target', 'v-friend'] });
  assert.equal(r.status, 200);
  assert.equal((await friend.post('/v1/presence/watch', { users: ['v-target'] })).status, 200);
  // it comes online: the friend is told, the spy never
  assert.equal((await target.post('/v1/presence/heartbeat', '')).status, 200);
  await sf.until((x) => x.events.some((e) => e.event === 'presence' && e.json.data.user === 'v-target' &&
    e.json.data.status === 'online'), 'the friend told');
  r = await spy.get('/v1/presence?users=v-target,v-friend');
  // both are online, and read offline to the spy, who shares nothing with them
  assert.deepEqual(r.json, { 'v-target': { status: 'offline', last_seen: null },
    'v-friend': { status: 'offline', last_seen: null } });
  r = await friend.get('/v1/presence?users=v-target');
  assert.equal(r.json['v-target'].status, 'online');
  assert.match(r.json['v-target'].last_seen, /Z$/);
  r = await spy.post('/v1/presence/watch', { users: ['v-target'] });
  assert.deepEqual(r.json.presence, { 'v-target': { status: 'offline', last_seen: null } });
  await sleep(200);
  assert.equal(ss.events.filter((e) => e.event === 'presence').length, 0, 'the spy is told nothing');
  ss.close();
  sf.close();
  // once they share a conversation, the spy sees the target (a new watch)
  await spy.send('v-target', 'hello');
  r = await spy.get('/v1/presence?users=v-target');
  assert.equal(r.json['v-target'].status, 'online');
});

test('finding 5: presence_visibility = all: anyone sees anyone', async () => {
  const t = await new Stack({ LARK_PRESENCE_VISIBILITY: 'all' }).start();
  try {
    const target = new Api(t.url, 'a-target');
    await target.post('/v1/presence/heartbeat', '');
    const r = await new Api(t.url, 'a-stranger').post('/v1/presence/watch', { users: ['a-target'] });
    assert.equal(r.json.presence['a-target'].status, 'online');
  } finally {
    await t.stop();
  }
});

test('finding 5: a JWT naming a claim twice is refused (401 invalid_token)', async () => {
  const b64 = (text) => Buffer.from(text).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 600;
  const head = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(`{"sub":"d-alice","exp":${exp},"sub":"d-admin"}`)}`;
  const { secret } = await import('./lib/stack.mjs');
  const tok = `${head}.${crypto.createHmac('sha256', secret).update(head).digest('base64url')}`;
  const r = await request(s.url, 'GET', '/v1/conversations', { tok });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'invalid_token');
});

test('finding 5: security headers on API answers, streams, pages and lighttpd\'s own errors', async () => {
  const api = await request(s.url, 'GET', '/v1/conversations', { tok: token('h-ann') });
  const err = await request(s.url, 'GET', '/v1/conversations');
  const page = await request(s.url, 'GET', '/');
  const js = await request(s.url, 'GET', '/lark.js');
  const missing = await request(s.url, 'GET', '/no-such-page.html');
  const sse = await new RawSSE(s.url, '/v1/events', { tok: token('h-ann') }).ready;
  sse.close();
  for (const [what, r] of [['API', api], ['API error', err], ['page', page], ['script', js], ['404', missing], ['SSE', sse]]) {
    assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
    assert.equal(r.headers['x-frame-options'], 'DENY', what);
    assert.equal(r.headers['referrer-policy'], 'no-referrer', what);
    assert.match(r.headers['content-security-policy'] || '', /frame-ancestors 'none'/, what);
  }
  assert.match(api.headers['content-security-policy'], /default-src 'none'/);
  // the pages' policy: their own scripts and styles, nothing inline
  const csp = page.headers['content-security-policy'];
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in index.html');
});

// ---- finding 2: what lighttpd logs ---------------------------------------------

test('finding 2: larkd killed with streams held: lighttpd logs no token and no ticket', async () => {
  const t = await new Stack().start();
  try {
    const ann = new Api(t.url, 'l-ann');
    const mint = async () => (await request(t.url, 'POST', '/v1/tickets', { tok: ann.tok, body: '' })).json.ticket;
    const used = await mint();
    const streams = await Promise.all([
      new RawSSE(t.url, `/v1/events?access_token=${ann.tok}`).ready,
      new RawSSE(t.url, `/v1/events?ticket=${used}`).ready,
    ]);
    const polls = [request(t.url, 'GET', `/v1/poll?timeout=30&access_token=${ann.tok}`).catch((e) => e),
      request(t.url, 'GET', `/v1/poll?timeout=30&ticket=${await mint()}`).catch((e) => e)];
    const fresh = await mint();
    await sleep(200);
    t.larkd.kill('SIGKILL');
    await Promise.all(polls);
    await waitFor(() => streams.every((x) => x.closed), 'the streams cut');
    // larkd is down: a request with a ticket not used yet is logged by lighttpd
    const r = await request(t.url, 'GET', `/v1/events?ticket=${fresh}`);
    assert.equal(r.status, 503);
    const log = path.join(t.dir, 'lighttpd.error.log');
    await waitFor(() => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').includes('are down'),
      'lighttpd logging the refused request');
    const text = fs.readFileSync(log, 'utf8');
    assert.match(text, /for \/v1\/events\?access_token=\[redacted\]/, 'the line that held the token (issue 13)');
    assert.match(text, /ticket=\[redacted\]/);
    for (const secret of [ann.tok, ann.tok.split('.')[2], used, fresh])
      assert.ok(!text.includes(secret), `the error log holds ${secret.slice(0, 12)}...:\n${text}`);
    // the log directory holds no other log (no access log) with them either
    for (const f of fs.readdirSync(t.dir).filter((n) => /^lighttpd/.test(n))) {
      const body = fs.readFileSync(path.join(t.dir, f), 'utf8');
      assert.ok(!body.includes(ann.tok) && !body.includes(fresh), f);
    }
  } finally {
    await t.stop();
  }
});

test('stop', async () => {
  await s.stop();
});
