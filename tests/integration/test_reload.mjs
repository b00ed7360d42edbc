// test_reload.mjs - keys by kid and SIGHUP (docs/OPERATIONS.md "Signals",
// docs/DEPLOY.md "Rotating a key"): a token signed by either of two keys is
// accepted, a removed key's token is refused after the reload, and the
// streams it admitted earlier (SSE, long-poll, WebSocket) keep running; RS256
// and ES256 keys from a JWKS file; a broken file changes nothing; the safe
// settings apply at once and the others are logged as needing a restart;
// lark-push survives SIGHUP too.
//
// Settings come from a configuration file (LARK_CONFIG), as in production,
// with the harness's environment overrides for keys and log level removed:
// the environment would win over the file on every reload.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { assert, cleanup, test } from './lib/harness.mjs';
import { Stack, sleep, tmpDir, removeTmpDir, waitFor } from './lib/stack.mjs';
import { RawSSE, metrics, request, token } from './lib/client.mjs';
import { PushRig, fcmToken } from './lib/push.mjs';

const b64url = (b) => Buffer.from(b).toString('base64url');

/** A JWT signed with an asymmetric key (RS256, or ES256 in JOSE's r||s form). */
function signed(alg, key, kid, sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url(JSON.stringify({ alg, typ: 'JWT', kid }))}.${b64url(JSON.stringify({ sub, iat: now, exp: now + 600 }))}`;
  const sig = crypto.sign('sha256', Buffer.from(head), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${head}.${b64url(sig)}`;
}

const hs = (sub, kid, secret) => token(sub, { secret, header: { alg: 'HS256', typ: 'JWT', kid } });

/** A stack configured by a file in its own directory. */
class Configured {
  constructor(lines) {
    this.dir = tmpDir('lark-conf-');
    this.conf = path.join(this.dir, 'lark.conf');
    this.write(lines);
    this.stack = new Stack({ LARK_CONFIG: this.conf, LARK_JWT_SECRET: null, LARK_LOG_LEVEL: null });
  }
  write(lines) { fs.writeFileSync(this.conf, lines.join('\n') + '\n'); }
  file(name, text) {
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, text);
    return p;
  }
  log() { return fs.readFileSync(this.stack.larkdLog, 'utf8'); }

  /** SIGHUP, then wait for the reload's outcome line after the n-th. */
  async reload(expect = /reload: done/) {
    const before = (this.log().match(/reload: (done|refused)/g) || []).length;
    this.stack.larkd.kill('SIGHUP');
    await waitFor(() => (this.log().match(/reload: (done|refused)/g) || []).length > before, 'the reload');
    const last = this.log().split('\n').filter((l) => /reload: (done|refused)/.test(l)).pop();
    assert.match(last, expect);
    return last;
  }

  async stop() {
    await this.stack.stop();
    removeTmpDir(this.dir);
  }
}

const status = async (url, tok) => (await request(url, 'GET', '/v1/conversations', { tok })).status;

/** A WebSocket session that records event lines. */
function wsSession(url, tok) {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws');
  const s = { lines: [], closed: false };
  let raw = '';
  ws.on('message', (d) => {
    raw += d.toString();
    let i;
    while ((i = raw.indexOf('\n')) >= 0) { s.lines.push(JSON.parse(raw.slice(0, i))); raw = raw.slice(i + 1); }
  });
  ws.on('close', () => { s.closed = true; });
  s.ready = new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); })
    .then(() => ws.send(JSON.stringify({ type: 'auth', token: tok, since: 0 }) + '\n'));
  s.close = () => ws.terminate();
  return s;
}

test('HS256 by kid: either key accepted; the removed one refused after SIGHUP; held streams stay', async () => {
  const k1 = crypto.randomBytes(24).toString('base64url');
  const k2 = crypto.randomBytes(24).toString('base64url');
  const c = new Configured([]);
  const secrets = c.file('secrets', `# keys\nk1 ${k1}\n`);
  c.write([`jwt_secrets_file = ${secrets}`]);
  cleanup(() => c.stop());
  const s = await c.stack.start();
  assert.match(c.log(), /tokens: HS256 keys: k1\n/);
  assert.doesNotMatch(c.log(), /development JWT secret/);
  assert.equal(await status(s.url, hs('a', 'k1', k1)), 200);
  assert.equal(await status(s.url, hs('a', 'k2', k2)), 401);
  assert.equal(await status(s.url, hs('a', null, k1)), 200); // no kid: each key in turn

  // streams admitted by k1, held across both reloads
  const sse = new RawSSE(s.url, '/v1/events', { tok: hs('r-bob', 'k1', k1) });
  await sse.ready;
  const ws = wsSession(s.url, hs('r-carol', 'k1', k1));
  await ws.ready;
  const first = await request(s.url, 'GET', '/v1/poll?since=0&timeout=0', { tok: hs('r-dave', 'k1', k1) });
  const poll = request(s.url, 'GET', `/v1/poll?since=${first.json.next}&timeout=30`, { tok: hs('r-dave', 'k1', k1), timeout: 40000 });
  await waitFor(async () => (await metrics(s.url))['lark_held_connections{transport="poll"}'] === 1, 'the held poll');

  fs.appendFileSync(secrets, `k2 ${k2}\n`);
  const both = await c.reload();
  assert.match(both, /tokens: HS256 keys: k1, k2$/);
  assert.ok(!both.includes(k1) && !c.log().includes(k2), 'a secret in the log');
  assert.equal(await status(s.url, hs('a', 'k1', k1)), 200);
  assert.equal(await status(s.url, hs('a', 'k2', k2)), 200);

  fs.writeFileSync(secrets, `k2 ${k2}\n`);
  assert.match(await c.reload(), /tokens: HS256 keys: k2$/);
  const refused = await request(s.url, 'GET', '/v1/conversations', { tok: hs('a', 'k1', k1) });
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error.code, 'invalid_token');
  assert.equal(await status(s.url, hs('a', 'k2', k2)), 200);

  // the held connections are the same ones, and still delivered to
  for (const to of ['r-bob', 'r-carol', 'r-dave']) {
    const r = await request(s.url, 'POST', '/v1/messages', { tok: hs('r-alice', 'k2', k2), body: { to, body: `to ${to}` } });
    assert.equal(r.status, 201, r.body);
  }
  await sse.until((x) => x.stored().length === 1, 'the event on the SSE stream');
  assert.equal(sse.stored()[0].json.data.body, 'to r-bob');
  assert.ok(!sse.closed);
  await waitFor(() => ws.lines.some((l) => l.type === 'message' && l.data.body === 'to r-carol'), 'the WebSocket event');
  assert.ok(!ws.closed);
  assert.deepEqual((await poll).json.events.map((e) => e.data.body), ['to r-dave']);
  const m = await metrics(s.url);
  assert.equal(m['lark_reloads_total{result="ok"}'], 2);
  assert.equal(m['lark_held_connections{transport="sse"}'], 1);
  assert.equal(m['lark_held_connections{transport="ws"}'], 1);
  sse.close();
  ws.close();

  // a broken key file: refused, logged, nothing changes
  fs.writeFileSync(secrets, 'k3\n');
  assert.match(await c.reload(/reload: refused/), /refused, nothing changed: .*expected "kid secret"/);
  assert.equal(await status(s.url, hs('a', 'k2', k2)), 200);
  assert.equal((await metrics(s.url))['lark_reloads_total{result="failed"}'], 1);
  // and a configuration that does not parse
  fs.writeFileSync(secrets, `k2 ${k2}\n`);
  c.write([`jwt_secrets_file = ${secrets}`, 'workers = many']);
  assert.match(await c.reload(/reload: refused/), /workers must be an integer/);
  assert.equal(await status(s.url, hs('a', 'k2', k2)), 200);
});

test('RS256 and ES256 keys by kid from a JWKS file, rotated by a reload', async () => {
  for (const [alg, gen] of [['RS256', () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })]]) {
    const [a, b] = [gen(), gen()];
    const jwk = (pair, kid) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg });
    const c = new Configured([]);
    const jwks = c.file('jwks.json', JSON.stringify({ keys: [jwk(a, 'a')] }));
    c.write([`jwt_alg = ${alg}`, `jwt_jwks_file = ${jwks}`]);
    const s = await c.stack.start();
    try {
      assert.match(c.log(), new RegExp(`tokens: ${alg} keys: a\\n`));
      assert.equal(await status(s.url, signed(alg, a.privateKey, 'a', 'j')), 200);
      assert.equal(await status(s.url, signed(alg, b.privateKey, 'b', 'j')), 401);
      assert.equal(await status(s.url, signed(alg, b.privateKey, 'a', 'j')), 401); // a kid names its key
      fs.writeFileSync(jwks, JSON.stringify({ keys: [jwk(a, 'a'), jwk(b, 'b')] }));
      assert.match(await c.reload(), new RegExp(`tokens: ${alg} keys: a, b$`));
      assert.equal(await status(s.url, signed(alg, b.privateKey, 'b', 'j')), 200);
      fs.writeFileSync(jwks, JSON.stringify({ keys: [jwk(b, 'b')] }));
      await c.reload();
      assert.equal(await status(s.url, signed(alg, a.privateKey, 'a', 'j')), 401);
      assert.equal(await status(s.url, signed(alg, b.privateKey, 'b', 'j')), 200);
    } finally {
      await c.stop();
    }
  }
});

test('safe settings apply at once; the others are logged as waiting for a restart', async () => {
  const secret = crypto.randomBytes(24).toString('base64url');
  const c = new Configured([]);
  const base = [`jwt_secret = ${secret}`, 'cors_origins = https://one.example', 'send_rate = 0'];
  c.write(base);
  cleanup(() => c.stop());
  const s = await c.stack.start();
  const tok = hs('safe', null, secret);
  const origin = async (o) => (await request(s.url, 'GET', '/v1/healthz', { headers: { Origin: o } })).headers['access-control-allow-origin'];
  assert.equal(await origin('https://one.example'), 'https://one.example');
  assert.doesNotMatch(c.log(), /DEBUG/);

  c.write([`jwt_secret = ${secret}`, 'cors_origins = https://two.example', 'send_rate = 1', 'send_burst = 1',
    'log_level = debug', 'workers = 3']);
  const done = await c.reload();
  assert.match(done, /changed=\[send_rate, send_burst, cors_origins, log_level\]/);
  assert.match(c.log(), /WARN larkd: reload: changed but only applied by a restart: workers/);
  assert.equal(await origin('https://one.example'), undefined);
  assert.equal(await origin('https://two.example'), 'https://two.example');
  const send = () => request(s.url, 'POST', '/v1/messages', { tok, body: { to: 'safe-peer', body: 'x' } });
  assert.equal((await send()).status, 201);
  const limited = await send();
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  await waitFor(() => /DEBUG larkd: request POST \/v1\/messages status=429/.test(c.log()), 'a debug line');

  // the metrics addresses and the log format
  c.write([`jwt_secret = ${secret}`, 'metrics_allow = 10.9.9.9', 'log_format = json']);
  await c.reload();
  assert.equal((await request(s.url, 'GET', '/metrics')).status, 403);
  await request(s.url, 'GET', '/v1/healthz');
  await sleep(200);
  const tail = c.log().trim().split('\n').pop();
  assert.equal(JSON.parse(tail).program, 'larkd', tail);
});

test('lark-push: SIGHUP reloads its log settings and it keeps sending', async () => {
  const s = await new Stack().start();
  const rig = new PushRig(s);
  cleanup(async () => { await rig.stop(); await s.stop(); });
  await rig.startFakes();
  await rig.startDaemon();
  rig.daemon.kill('SIGHUP');
  await waitFor(() => /reload: done log_level=info log_format=text/.test(rig.logs()), 'lark-push reload line');
  const bob = token('hup-bob');
  const dev = await request(s.url, 'POST', '/v1/devices', { tok: bob, body: { platform: 'fcm', token: fcmToken('hup-bob'), app: 'com.example.chat' } });
  assert.equal(dev.status, 201, dev.body);
  const r = await request(s.url, 'POST', '/v1/messages', { tok: token('hup-alice'), body: { to: 'hup-bob', body: 'after HUP' } });
  assert.equal(r.status, 201);
  await waitFor(() => rig.fcm.delivered.length === 1, 'the push after SIGHUP', 20000);
  assert.ok(!rig.daemon.exitCode);
});
