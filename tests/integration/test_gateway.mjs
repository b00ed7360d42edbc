// test_gateway.mjs - what lighttpd answers on larkd's behalf (issue 13,
// finding 5; API.md "Operations": a dead or restarting service answers 503
// with Retry-After, never 500), and the request-read timeouts that end
// slowloris and a Content-Length longer than the body (conf/lighttpd.conf,
// server.max-read-idle).

import net from 'node:net';
import { assert, test } from './lib/harness.mjs';
import { Stack, waitFor } from './lib/stack.mjs';
import { Api, token } from './lib/client.mjs';

let s;
let port;

/** 503 unavailable with Retry-After, the JSON error shape (API.md). */
function unavailable(r, what) {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.body}`);
  assert.equal(r.json && r.json.error && r.json.error.code, 'unavailable', `${what}: ${r.body}`);
  assert.ok(Number(r.headers['retry-after']) >= 1, `${what}: Retry-After`);
  assert.match(r.headers['content-type'], /^application\/json/);
}

/**
 * A raw client: sends parts[0], then one more part every `every` ms, and
 * records what comes back and whether the server closed before every part
 * was sent. Gives up (closing itself) after limit ms.
 */
function trickle(parts, every, limit) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    let sent = 0;
    let byServer = true;
    const send = () => { if (sent < parts.length) sock.write(parts[sent++]); };
    const iv = setInterval(send, every);
    const end = setTimeout(() => { byServer = false; sock.destroy(); }, limit);
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearInterval(iv);
      clearTimeout(end);
      resolve({ got, sent, byServer });
    });
    sock.once('connect', send);
  });
}

test('start', async () => {
  s = await new Stack().start();
  port = Number(new URL(s.url).port);
});

test('a request read by lighttpd slowly, or whose body never comes, is dropped', async () => {
  // slowloris: one header line every 12 s, the head never complete
  const loris = trickle(['GET /v1/healthz HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n', 'X-B: 1\r\n', 'X-C: 1\r\n', 'X-D: 1\r\n'], 12000, 45000);
  // Content-Length 100, a 5-byte body, then nothing
  const short = trickle([`POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('gw-short')}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'], 1000, 45000);
  // a held long-poll meanwhile: nothing is read from its client, it is not dropped
  const poll = new Api(s.url, 'gw-poll').poll('?timeout=15');
  const [l, b, p] = await Promise.all([loris, short, poll]);
  assert.ok(l.byServer, 'the slowloris connection was still open when the client gave up');
  assert.ok(l.sent < 6, `lighttpd waited for all ${l.sent} header lines`);
  assert.doesNotMatch(l.got, /^HTTP\/1\.1 2/, 'the incomplete request was answered as if complete');
  assert.ok(b.byServer, 'the short-body connection was still open when the client gave up');
  assert.doesNotMatch(b.got, /^HTTP\/1\.1 2/, 'the short body was accepted');
  assert.equal(p.status, 200, `the held poll: ${p.status} ${p.body}`);
  assert.deepEqual(p.json.events, []);
});

test('larkd killed with a request in flight: 503 unavailable with Retry-After, not 500', async () => {
  const api = new Api(s.url, 'gw-inflight');
  // stopped, larkd's socket still accepts: lighttpd sends the request, and
  // the kill breaks the connection before any answer
  s.larkd.kill('SIGSTOP');
  const inflight = api.get('/v1/conversations');
  await new Promise((r) => setTimeout(r, 300));
  s.larkd.kill('SIGKILL');
  unavailable(await inflight, 'in flight');
});

test('larkd down: 503 unavailable with Retry-After on the API and the stream endpoints', async () => {
  const api = new Api(s.url, 'gw-down');
  unavailable(await api.get('/v1/conversations'), 'GET /v1/conversations');
  unavailable(await api.post('/v1/messages', { to: 'gw-x', body: 'hi', client_msg_id: 'gw1' }), 'POST /v1/messages');
  unavailable(await api.poll('?timeout=5'), 'long-poll');
  unavailable(await api.get('/v1/events'), 'SSE');
});

test('larkd back: answers are larkd\'s again (its own errors untouched)', async () => {
  await s.restartLarkd();
  const api = new Api(s.url, 'gw-back');
  // lighttpd marked the backend down after the failed connects; it tries
  // again within a second (disable-time 0), answering 503 until then
  const r = await waitFor(async () => {
    const x = await api.get('/v1/conversations');
    if (x.status === 503) return null;
    return x;
  }, 'larkd to answer again', 10000, 200);
  assert.equal(r.status, 200, r.body);
  const bad = await api.post('/v1/messages', { to: 'gw-x' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'missing_field');
});

test('stop', async () => {
  await s.stop();
});
