// test_cgi.mjs - larkd as a plain CGI program (GATEWAY_INTERFACE set, one
// request from the environment and stdin, the answer on stdout), for hosts
// that only offer CGI: first larkd spawned by hand with a CGI environment,
// then behind the two web servers a CGI site has - lighttpd's mod_cgi as
// `make run-cgi` runs it, and Apache's mod_cgid (conf/apache-cgi.conf) - the
// transport-independent API (send, history, conversations, receipts,
// errors) and what needs processes to wait and to share limits: a held
// long-poll woken by a send from another process, an SSE stream that
// ends at its window with retry: and resumes with Last-Event-ID, the
// held-connection cap (429 too_many_connections) and the send rate limit
// across processes, and a client that hangs up freeing its process.
// On the postgres back end every CGI process connects to the run's cluster
// (a host that only offers CGI may still have a database server).

import { spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { assert, test } from './lib/harness.mjs';
import { build, freshDb, removeTmpDir, secret, sleep, tmpDir, waitFor } from './lib/stack.mjs';
import { Api, RawSSE, request, token } from './lib/client.mjs';
import { CgiServer } from './lib/cgi.mjs';

const dir = tmpDir('lark-cgi-'); // removed at exit whatever happens
let dbEnv = {}; // LARK_DB on postgres

/** Run one CGI request; returns { status, headers, body, json }. */
function cgi(method, uri, { tok, body, contentType = 'application/json' } = {}) {
  const input = body === undefined ? '' : JSON.stringify(body);
  const env = {
    PATH: process.env.PATH, LARK_DATA: dir, LARK_JWT_SECRET: secret, GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: method, REQUEST_URI: uri, REMOTE_ADDR: '127.0.0.1',
    ASAN_OPTIONS: 'detect_leaks=1:exitcode=23', ...dbEnv,
  };
  if (tok) env.HTTP_AUTHORIZATION = `Bearer ${tok}`;
  if (body !== undefined) {
    env.CONTENT_TYPE = contentType;
    env.CONTENT_LENGTH = String(Buffer.byteLength(input));
  }
  const tool = process.env.LARK_LARKD_WRAPPER ? process.env.LARK_LARKD_WRAPPER.split(' ') : [];
  const argv = [...tool, path.join(build, 'larkd')];
  const r = spawnSync(argv[0], argv.slice(1), { env, input, timeout: 60000 });
  assert.equal(r.status, 0, `larkd (CGI) exited ${r.status}: ${r.stderr}`);
  assert.doesNotMatch(String(r.stderr), /Sanitizer|runtime error/);
  const out = r.stdout.toString('utf8');
  const split = out.indexOf('\r\n\r\n');
  const head = out.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(head.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const text = out.slice(split + 4);
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: Number(headers.status.split(' ')[0]), headers, body: text, json };
}

test('CGI: send, history, poll, events and errors each in one process', async () => {
  dbEnv = await freshDb();
  const a = token('cgi-alice');
  const b = token('cgi-bob');
  let r = cgi('GET', '/v1/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
  r = cgi('POST', '/v1/messages', { tok: a, body: { to: 'cgi-bob', body: 'via CGI', client_msg_id: 'c1' } });
  assert.equal(r.status, 201, r.body);
  const conv = r.json.conversation_id;
  r = cgi('POST', '/v1/messages', { tok: a, body: { to: 'cgi-bob', body: 'via CGI', client_msg_id: 'c1' } });
  assert.equal(r.status, 200, 'idempotent across processes');
  r = cgi('GET', `/v1/conversations/${conv}/messages`, { tok: b });
  assert.deepEqual(r.json.messages.map((m) => m.body), ['via CGI']);
  r = cgi('GET', '/v1/poll?since=0&timeout=30', { tok: b });
  assert.equal(r.status, 200);
  assert.equal(r.json.events[0].data.body, 'via CGI');
  r = cgi('GET', '/v1/poll?since=1&timeout=1', { tok: b });
  assert.deepEqual(JSON.parse(r.body.trim()), { events: [], next: 1 }, 'held to its timeout, then empty');
  r = cgi('POST', '/v1/messages', { tok: a, body: { to: 'cgi-bob' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'missing_field');
  r = cgi('POST', '/v1/messages', { body: { to: 'cgi-bob', body: 'x' } });
  assert.equal(r.status, 401);
  removeTmpDir(dir);
  if (dbEnv.drop) await dbEnv.drop();
});

/** A GET that resolves once the answer's head is there: { res, req, body() }. */
function held(base, p, tok) {
  return new Promise((resolve, reject) => {
    const req = http.get(base + p, { headers: { Authorization: `Bearer ${tok}` }, agent: false }, (res) => {
      const chunks = [];
      const done = new Promise((r) => {
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => r(Buffer.concat(chunks).toString('utf8')));
        res.on('error', () => r(Buffer.concat(chunks).toString('utf8')));
      });
      resolve({ res, req, body: () => done });
    });
    req.on('error', reject);
  });
}

// Small windows and limits so that the suite stays short: SSE streams end
// after 5 s, a long-poll trickles every second (which is how a process
// finds that its client left), 2 held connections per user, sends at
// 1/s with a burst of 4 per user (each test uses its own users).
const SERVER_ENV = {
  LARK_CGI_SSE_WINDOW: '5', LARK_POLL_TRICKLE: '1', LARK_SSE_KEEPALIVE: '1', LARK_SSE_RETRY_MS: '300',
  LARK_MAX_HELD_PER_USER: '2', LARK_SEND_RATE: '1', LARK_SEND_BURST: '4',
  LARK_MEDIA_RATE: '1', LARK_MEDIA_BURST: '2',
};

for (const kind of ['lighttpd', 'apache']) {
  let srv;
  const T = (name, fn, opts) => test(`${name} [${kind}]`, fn, opts);
  const api = (user) => new Api(srv.url, `${kind}-${user}`);

  T('start (mod_cgi / mod_cgid, larkd per request)', async () => {
    srv = await new CgiServer(kind, SERVER_ENV).start();
    const r = await request(srv.url, 'GET', '/v1/healthz');
    assert.equal(r.status, 200, srv.logs());
    assert.deepEqual(r.json, { status: 'ok' });
    const page = await request(srv.url, 'GET', '/');
    assert.equal(page.status, 200, 'www/ is served');
    assert.match(page.headers['content-type'], /^text\/html/);
  });

  T('send, idempotent retry, history, conversations, receipts', async () => {
    const a = api('alice');
    const b = api('bob');
    let r = await a.post('/v1/messages', { to: b.user, body: 'hi', client_msg_id: 'k1' });
    assert.equal(r.status, 201, r.body);
    const conv = r.json.conversation_id;
    r = await a.post('/v1/messages', { to: b.user, body: 'hi', client_msg_id: 'k1' });
    assert.equal(r.status, 200, 'the same message again, from another process');
    r = await b.send(a.user, 'hello back');
    assert.equal(r.status, 201, r.body);
    r = await b.get(`/v1/conversations/${conv}/messages?after=0`);
    assert.deepEqual(r.json.messages.map((m) => m.body), ['hi', 'hello back']);
    assert.deepEqual(r.json.messages.map((m) => m.seq), [1, 2]);
    r = await b.get('/v1/conversations');
    assert.equal(r.status, 200);
    assert.equal(r.json.conversations[0].id, conv);
    assert.equal(r.json.conversations[0].last_message.body, 'hello back');
    r = await a.post('/v1/conversations', { type: 'group', title: 'cgi', members: [b.user] });
    assert.equal(r.status, 201, r.body);
    // b acknowledges and reads: a gets the receipts as events
    r = await b.get('/v1/poll?since=0&timeout=1');
    const seqs = r.json.events.map((e) => e.seq);
    r = await b.post('/v1/ack', { seq: Math.max(...seqs) });
    assert.ok([200, 204].includes(r.status), r.body);
    r = await b.post(`/v1/conversations/${conv}/read`, { seq: 1 });
    assert.ok([200, 204].includes(r.status), r.body);
    r = await a.get('/v1/poll?since=0&timeout=1');
    const receipts = r.json.events.filter((e) => e.type === 'receipt').map((e) => e.data.status);
    assert.ok(receipts.includes('delivered') && receipts.includes('read'), JSON.stringify(r.json));
    r = await b.get('/v1/conversations');
    assert.equal(r.json.conversations.find((c) => c.id === conv).unread, 0);
  });

  T('errors: the API codes from a CGI process', async () => {
    const a = api('erin');
    let r = await a.post('/v1/messages', { to: 'x' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'missing_field');
    r = await a.post('/v1/messages', '{"to":', {});
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'invalid_json');
    r = await request(srv.url, 'GET', '/v1/conversations');
    assert.equal(r.status, 401);
    assert.ok(r.json.error.code);
    r = await a.get('/v1/conversations/c_nosuch/messages');
    assert.ok([403, 404].includes(r.status), r.body);
    r = await a.get('/v1/nosuch');
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'not_found');
    r = await a.get('/v1/poll?timeout=abc');
    assert.equal(r.status, 400, r.body);
  });

  T('a held long-poll waits and is woken by a send from another process', async () => {
    const a = api('pat');
    const b = api('quinn');
    let answered = false;
    const poll = b.poll('?since=0&timeout=30').then((r) => { answered = true; return r; });
    await sleep(1500);
    assert.equal(answered, false, 'the long-poll is held, not answered at once');
    const sent = await a.send(b.user, 'wake up');
    assert.equal(sent.status, 201, sent.body);
    const r = await poll;
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.events.map((e) => e.data.body), ['wake up'], 'woken by the event, not by the timeout');
    assert.equal(r.json.next, 1);
  });

  T('SSE: live events, the window ends with retry:, Last-Event-ID resumes', async () => {
    const a = api('sam');
    const b = api('tess');
    const s1 = new RawSSE(srv.url, '/v1/events?since=0', { tok: b.tok });
    await s1.ready;
    assert.equal(s1.status, 200);
    assert.equal(s1.headers['content-type'], 'text/event-stream');
    await s1.until((s) => s.hellos.length === 1, 'hello');
    assert.equal((await a.send(b.user, 'live 1')).status, 201);
    await s1.until((s) => s.stored().length === 1, 'the live event');
    assert.equal(s1.stored()[0].json.data.body, 'live 1');
    // the window (5 s) ends the stream with a short retry: (fcgi/cgi_stream.c:
    // soon, spread so that streams opened together come back apart)
    await s1.until((s) => s.closed, 'the end of the window', 20000);
    assert.match(s1.raw, /retry: \d+\n\n$/, 'the stream ends with retry:');
    assert.ok(s1.retry >= 100 && s1.retry < 600, `retry: ${s1.retry}`);
    const last = s1.stored().at(-1).id;
    assert.equal((await a.send(b.user, 'while away')).status, 201);
    const s2 = new RawSSE(srv.url, '/v1/events', { tok: b.tok, headers: { 'Last-Event-ID': last } });
    await s2.ready;
    await s2.until((s) => s.stored().length === 1, 'the missed event');
    assert.equal(s2.stored()[0].json.data.body, 'while away');
    assert.equal(Number(s2.stored()[0].id), Number(last) + 1, 'resumed after Last-Event-ID, nothing twice');
    s2.close();
  }, { timeout: 60000 });

  T('429 too_many_connections across processes; a client that hangs up frees its process', async () => {
    const u = api('uma');
    const h1 = await held(srv.url, '/v1/poll?since=0&timeout=30', u.tok);
    const h2 = await held(srv.url, '/v1/events?since=0', u.tok);
    assert.equal(h1.res.statusCode, 200);
    assert.equal(h2.res.statusCode, 200);
    let r = await u.get('/v1/poll?since=0&timeout=30');
    assert.equal(r.status, 429, r.body);
    assert.equal(r.json.error.code, 'too_many_connections');
    assert.ok(Number(r.headers['retry-after']) > 0);
    const before = srv.larkdPids();
    assert.ok(before.length >= 2, `two held larkd processes, found ${before.length}`);
    h1.req.destroy();
    // the process sees the hang-up (its trickle write fails, or the web
    // server ends it), exits and gives its slot back
    await waitFor(() => srv.larkdPids().length < before.length, 'the hung-up poll\'s process to end', 20000, 100);
    await waitFor(async () => (await u.get('/v1/poll?since=0&timeout=1')).status === 200,
      'a held connection to be accepted again', 20000, 200);
    h2.req.destroy();
    await waitFor(() => srv.larkdPids().length === 0, 'every larkd to end', 20000, 100);
  }, { timeout: 60000 });

  T('the send rate limit holds across processes', async () => {
    // n sends at once, each a process of its own: the bucket (burst 4,
    // 1/s) lets through at most the burst plus what refilled while they
    // ran, however slow the processes are (under valgrind, fewer of them),
    // and refuses the rest (a send may also meet a busy SQLite database:
    // 503, which clients retry)
    const n = process.env.LARK_LARKD_WRAPPER ? 12 : 30;
    const a = api('vic');
    const t0 = Date.now();
    const sends = await Promise.all(Array.from({ length: n },
      (_, i) => a.post('/v1/messages', { to: `${kind}-wes`, body: `m${i}`, client_msg_id: `rate-${i}` },
        { timeout: 180000 }).catch((e) => ({ status: String(e) }))));
    const allowed = 4 + Math.ceil((Date.now() - t0) / 1000) + 1;
    const statuses = sends.map((r) => r.status);
    const ok = statuses.filter((s) => s === 201).length;
    const limited = sends.filter((r) => r.status === 429);
    assert.deepEqual(statuses.filter((s) => ![201, 429, 503].includes(s)), [], `statuses: ${statuses}`);
    assert.ok(ok >= 1 && ok <= allowed, `${ok} of ${n} passed, at most ${allowed} may: ${statuses}`);
    if (n > allowed) assert.ok(limited.length > 0, `statuses: ${statuses}`);
    for (const r of limited) {
      assert.equal(r.json.error.code, 'rate_limited');
      assert.ok(Number(r.headers['retry-after']) > 0);
    }
  }, { timeout: 240000 });

  T('media: an upload and its download; the upload rate holds across processes', async () => {
    const a = api('xia');
    const up = (i) => a.post(`/v1/media?name=f${i}.bin`, Buffer.from(`bytes ${i}`),
      { headers: { 'Content-Type': 'application/octet-stream' }, timeout: 120000 });
    let r = await up(0);
    assert.equal(r.status, 201, r.body);
    const id = r.json.media.id;
    if (kind === 'lighttpd') { // X-Sendfile from a CGI: conf/lighttpd-cgi.conf (Apache needs mod_xsendfile)
      const got = await a.get(`/v1/media/${id}`);
      assert.equal(got.status, 200, got.body);
      assert.equal(got.body, 'bytes 0');
    }
    // burst 2, 1 per minute: the third upload, in its own process, is refused
    r = await up(1);
    assert.equal(r.status, 201, r.body);
    r = await up(2);
    assert.equal(r.status, 429, r.body);
    assert.equal(r.json.error.code, 'rate_limited');
  });

  T('a ticket made by one process opens a long-poll in another, once', async () => {
    const a = api('yan');
    const r = await a.post('/v1/tickets', '');
    assert.equal(r.status, 201, r.body);
    const path = `/v1/poll?since=0&timeout=1&ticket=${encodeURIComponent(r.json.ticket)}`;
    const first = await request(srv.url, 'GET', path);
    assert.equal(first.status, 200, first.body);
    const again = await request(srv.url, 'GET', path);
    assert.equal(again.status, 401, 'a used ticket, whichever process used it');
    assert.equal(again.json.error.code, 'invalid_token');
  });

  T('stop (no sanitizer report from any CGI process)', async () => {
    await srv.stop();
  });
}
