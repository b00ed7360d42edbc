// test_deb.mjs - the installed Debian package, run the way an operator runs
// it (tests/package/run.sh installs it first, purges it after, and runs
// this inside a network namespace of its own so that lighttpd can have
// ports 80 and 443 whatever else runs on the machine).
//
// larkd and lark-push start the way their units say (unit-exec.sh: the
// lark user, UMask, RuntimeDirectory, ...); lighttpd the way Debian's
// lighttpd.service does, with the installed /etc/lighttpd/lighttpd.conf and
// lark's snippet enabled by the package. Then a smoke test of send, SSE,
// long-poll and WebSocket through it, the same over TLS with a throwaway
// certificate (51-lark-tls.conf), a key rotation through the unit's
// ExecReload with a stream held across it, and a push to a fake FCM.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { assert, run, test } from '../integration/lib/harness.mjs';
import { token } from '../integration/lib/client.mjs';
import { exited, sleep, waitExit, waitFor } from '../integration/lib/stack.mjs';
import { makePki } from '../fakes/pki.mjs';
import { FakeFcm } from '../fakes/fcm.mjs';
import { fcmToken } from '../integration/lib/push.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, '../..');
const version = fs.readFileSync(path.join(top, 'VERSION'), 'utf8').trim();
const unitExec = path.join(here, 'unit-exec.sh');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lark-pkg-'));
const HTTP = 'http://127.0.0.1';
const HTTPS = 'https://127.0.0.1';

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts });
const stat = (p) => fs.statSync(p);
const mode = (p) => stat(p).mode & 0o7777;
const owner = (p) => {
  const s = stat(p);
  return `${sh('id', ['-nu', String(s.uid)]).trim()}:${sh('getent', ['group', String(s.gid)]).split(':')[0]}`;
};

/** The HS256 secret of kid in /etc/lark/jwt-secrets. */
function secretOf(kid) {
  const line = fs.readFileSync('/etc/lark/jwt-secrets', 'utf8').split('\n').find((l) => l.startsWith(`${kid} `));
  assert.ok(line, `no key ${kid} in /etc/lark/jwt-secrets`);
  return line.slice(kid.length + 1).trim();
}
let currentKid = 'k1'; // k2 after the rotation test
const tok = (user, kid = currentKid) => token(user, { secret: secretOf(kid), header: { alg: 'HS256', typ: 'JWT', kid } });

let ca = null; // the throwaway certificate, once TLS is on

/** One request over http or https; never throws on a status. */
function req(url, { method = 'GET', t, body, headers = {} } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const h = { ...headers };
  let data = null;
  if (t) h.Authorization = `Bearer ${t}`;
  if (body !== undefined) {
    data = Buffer.from(JSON.stringify(body));
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = data.length;
  }
  return new Promise((resolve, reject) => {
    const r = mod.request(u, { method, headers: h, ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    r.setTimeout(30000, () => r.destroy(new Error(`${method} ${url} timed out`)));
    r.on('error', reject);
    if (data) r.write(data);
    r.end();
  });
}

/** An SSE stream: the stored events' data, parsed, as they come. */
function sse(url, t) {
  const s = { events: [], hello: false, closed: false, raw: '' };
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  s.ready = new Promise((resolve, reject) => {
    s.req = mod.get(u, { headers: { Authorization: `Bearer ${t}`, Accept: 'text/event-stream' }, ca, agent: false }, (res) => {
      s.status = res.statusCode;
      s.headers = res.headers;
      res.setEncoding('utf8');
      let pending = '';
      res.on('data', (chunk) => {
        s.raw += chunk;
        pending += chunk;
        let i;
        while ((i = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, i);
          pending = pending.slice(i + 2);
          if (/^event: hello$/m.test(block)) s.hello = true;
          const id = /^id: (\d+)$/m.exec(block);
          const d = /^data: (.*)$/m.exec(block);
          if (id && d) s.events.push(JSON.parse(d[1]));
        }
      });
      res.on('end', () => { s.closed = true; });
      resolve(s);
    });
    s.req.on('error', (e) => { s.closed = true; reject(e); });
  });
  s.close = () => s.req.destroy();
  return s;
}

function send(base, from, to, body) {
  return req(`${base}/v1/messages`, { method: 'POST', t: tok(from), body: { to, body, client_msg_id: crypto.randomUUID() } });
}

/** A WebSocket session: auth (since 0), then the body of the first message
 * event, which trigger sends (whether it lands in the backlog or live). */
async function wsReceives(base, user, trigger) {
  const url = base.replace(/^http/, 'ws') + '/v1/ws';
  const ws = new WebSocket(url, { ca });
  let buf = '';
  const lines = [];
  ws.on('message', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
  });
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  ws.send(JSON.stringify({ type: 'auth', token: tok(user), since: 0 }) + '\n');
  await trigger();
  const ev = await waitFor(() => lines.find((l) => l.type === 'message'), `${url} message`);
  assert.ok(!lines.some((l) => l.type === 'error'), JSON.stringify(lines));
  ws.close();
  return ev.data.body;
}

// ---- services, as their units say ------------------------------------------

class Service {
  constructor(unit, name) {
    this.unit = unit;
    this.log = path.join(work, `${name}.log`);
    this.name = name;
  }

  async start() {
    const out = fs.openSync(this.log, 'a');
    const before = fs.readFileSync(this.log, 'utf8').length;
    this.proc = spawn(unitExec, ['start', this.unit], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    await waitFor(() => exited(this.proc) || fs.readFileSync(this.log, 'utf8').slice(before).includes(' ready '),
      `${this.name} ready`, 20000);
    if (exited(this.proc)) throw new Error(`${this.name} exited:\n${this.logs()}`);
  }

  /** The unit's ExecReload, $MAINPID being this process (exec'd all the way to the daemon). */
  reload() {
    sh(unitExec, ['reload', this.unit, String(this.proc.pid)]);
  }

  async stop() {
    if (!this.proc || exited(this.proc)) return;
    this.proc.kill('SIGTERM');
    assert.ok(await waitExit(this.proc, 30000), `${this.name} did not stop`);
    assert.equal(this.proc.exitCode, 0, `${this.name} exit status\n${this.logs()}`);
  }

  logs() { return fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8').slice(-3000) : ''; }
}

const larkd = new Service('/lib/systemd/system/larkd.service', 'larkd');
const push = new Service('/lib/systemd/system/lark-push.service', 'lark-push');
let lighttpd = null;

/** lighttpd as Debian's lighttpd.service runs it: check the config, then -D. */
async function startLighttpd() {
  sh('lighttpd', ['-tt', '-f', '/etc/lighttpd/lighttpd.conf']);
  lighttpd = spawn('lighttpd', ['-D', '-f', '/etc/lighttpd/lighttpd.conf'], { stdio: 'ignore' });
  await waitFor(async () => exited(lighttpd) || (await req(`${HTTP}/v1/healthz`).then((r) => r.status === 200, () => false)),
    'lighttpd on port 80', 20000);
  assert.ok(!exited(lighttpd), `lighttpd exited: ${errorLog()}`);
}

async function stopLighttpd() {
  if (lighttpd && !exited(lighttpd)) {
    lighttpd.kill('SIGTERM');
    await waitExit(lighttpd, 10000);
  }
}

function errorLog() {
  const f = '/var/log/lighttpd/error.log';
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-2000) : '';
}

// ---- the tests -------------------------------------------------------------------

test('installed: every binary answers --version; files, owners and modes', async () => {
  for (const b of ['larkd', 'lark-push', 'lark-token', 'lark-push-admin', 'lark-copy', 'larkbench', 'fsyncbench'])
    assert.match(sh(`/usr/bin/${b}`, ['--version']), new RegExp(`^${b} ${version.replace(/\./g, '\\.')} \\(commit `));
  // installed binaries find the installed migrations
  assert.match(sh('/usr/bin/larkd', ['--help']), /default: \/usr\/share\/lark\/migrations\n/);
  assert.equal(owner('/etc/lark'), 'root:lark');
  assert.equal(mode('/etc/lark'), 0o750);
  for (const f of ['/etc/lark/lark.conf', '/etc/lark/jwt-secrets']) {
    assert.equal(owner(f), 'root:lark', f);
    assert.equal(mode(f), 0o640, f);
  }
  assert.equal(owner('/var/lib/lark'), 'lark:lark');
  assert.equal(mode('/var/lib/lark'), 0o700);
  assert.match(sh('id', ['-nG', 'www-data']), /\blark\b/);
  assert.equal(fs.readlinkSync('/etc/lighttpd/conf-enabled/50-lark.conf'), '../conf-available/50-lark.conf');
  assert.ok(!fs.existsSync('/etc/lighttpd/conf-enabled/51-lark-tls.conf'), 'TLS waits for a certificate');
  assert.match(secretOf('k1'), /^[A-Za-z0-9_-]{40,}$/);
});

test('larkd runs the way larkd.service says; nothing it makes is world-readable', async () => {
  await larkd.start();
  const pid = larkd.proc.pid;
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+(\d+)/m);
  assert.equal(Number(/^Uid:\s+(\d+)/m.exec(status)[1]), Number(sh('id', ['-u', 'lark'])));
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  assert.equal(owner('/run/lark'), 'lark:lark');
  assert.equal(mode('/run/lark'), 0o750);
  for (const s of ['/run/lark/larkd.sock', '/run/lark/larkd-ws.sock']) {
    assert.equal(owner(s), 'lark:lark', s);
    assert.equal(mode(s), 0o660, s);
  }
  for (const f of fs.readdirSync('/var/lib/lark')) {
    const p = path.join('/var/lib/lark', f);
    assert.equal(owner(p), 'lark:lark', p);
    assert.equal(mode(p) & 0o007, 0, `${p} is readable by others (${mode(p).toString(8)})`);
  }
});

test('lighttpd with the installed configuration: healthz, HEAD, the page, metrics', async () => {
  await startLighttpd();
  let r = await req(`${HTTP}/v1/healthz`);
  assert.deepEqual(r.json, { status: 'ok' });
  r = await req(`${HTTP}/v1/healthz`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  r = await req(`${HTTP}/lark/`);
  assert.equal(r.status, 200);
  assert.match(r.body, /<script type="module" src="app.js">/);
  assert.equal((await req(`${HTTP}/lark/lark.js`)).status, 200);
  r = await req(`${HTTP}/metrics`);
  assert.equal(r.status, 200);
  assert.ok(r.body.includes(`lark_build_info{version="${version}"`), r.body.slice(0, 500));
  assert.match(r.body, /^process_resident_memory_bytes \d+/m);
  // errors lighttpd answers for larkd are JSON too
  r = await req(`${HTTP}/v1/nope`, { t: tok('x') });
  assert.equal(r.json.error.code, 'not_found');
});

async function smoke(base) {
  const who = crypto.randomBytes(3).toString('hex');
  const alice = `alice-${who}`;
  const bob = `bob-${who}`;
  const stream = await sse(`${base}/v1/events`, tok(bob)).ready;
  assert.equal(stream.status, 200);
  assert.match(stream.headers['content-type'], /^text\/event-stream/);
  await waitFor(() => stream.hello, `${base} SSE hello`);
  const sent = await send(base, alice, bob, `over ${base}`);
  assert.equal(sent.status, 201, sent.body);
  await waitFor(() => stream.events.length === 1, `${base} SSE event`);
  assert.equal(stream.events[0].data.body, `over ${base}`);
  stream.close();
  const poll = await req(`${base}/v1/poll?since=0&timeout=5`, { t: tok(bob) });
  assert.equal(poll.status, 200);
  assert.deepEqual(poll.json.events.map((e) => e.data.body), [`over ${base}`]);
  // a held long-poll woken by a send
  const held = req(`${base}/v1/poll?since=${poll.json.next}&timeout=20`, { t: tok(bob) });
  await sleep(300);
  assert.equal((await send(base, alice, bob, 'woken')).status, 201);
  assert.deepEqual((await held).json.events.map((e) => e.data.body), ['woken']);
  const carol = `carol-${who}`; // a fresh inbox: its first message is the one sent here
  assert.equal(await wsReceives(base, carol, () => send(base, alice, carol, 'by ws')), 'by ws');
}

test('HTTP: send, SSE, long-poll and WebSocket through the installed lighttpd', async () => {
  await smoke(HTTP);
});

test('TLS: a throwaway certificate and lighty-enable-mod lark-tls: HTTPS, SSE, long-poll and WSS', async () => {
  const dir = path.join(work, 'tls');
  fs.mkdirSync(dir);
  sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  // where the snippet says an operator puts them
  fs.copyFileSync(path.join(dir, 'cert.pem'), '/etc/lark/tls/fullchain.pem');
  fs.copyFileSync(path.join(dir, 'key.pem'), '/etc/lark/tls/privkey.pem');
  fs.chmodSync('/etc/lark/tls/privkey.pem', 0o600);
  sh('lighty-enable-mod', ['lark-tls']);
  await stopLighttpd();
  await startLighttpd();
  ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  const r = await req(`${HTTPS}/v1/healthz`);
  assert.deepEqual(r.json, { status: 'ok' });
  await smoke(HTTPS);
  // plain HTTP still works beside it
  assert.equal((await req(`${HTTP}/v1/healthz`)).status, 200);
});

test('keys: a second key and a reload (ExecReload), then the first removed; the held stream stays', async () => {
  const base = HTTPS;
  const old = tok('rot-bob', 'k1');
  const stream = await sse(`${base}/v1/events`, old).ready;
  await waitFor(() => stream.hello, 'stream before the rotation');
  const k2 = crypto.randomBytes(32).toString('base64url');
  fs.appendFileSync('/etc/lark/jwt-secrets', `k2 ${k2}\n`);
  larkd.reload();
  await waitFor(() => /reload: done .*keys: k1, k2/.test(larkd.logs()), 'the reload with k1 and k2');
  assert.equal((await req(`${base}/v1/conversations`, { t: tok('rot-a', 'k1') })).status, 200);
  assert.equal((await req(`${base}/v1/conversations`, { t: tok('rot-a', 'k2') })).status, 200);
  fs.writeFileSync('/etc/lark/jwt-secrets', `k2 ${k2}\n`);
  larkd.reload();
  await waitFor(() => /reload: done .*keys: k2\n/.test(larkd.logs()), 'the reload with k2 alone');
  currentKid = 'k2';
  const refused = await req(`${base}/v1/conversations`, { t: old });
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error.code, 'invalid_token');
  // the stream admitted by k1 keeps receiving
  const sent = await req(`${base}/v1/messages`, { method: 'POST', t: tok('rot-alice', 'k2'), body: { to: 'rot-bob', body: 'after' } });
  assert.equal(sent.status, 201, sent.body);
  await waitFor(() => stream.events.some((e) => e.data.body === 'after'), 'the event on the held stream');
  assert.ok(!stream.closed);
  stream.close();
});

test('lark-push runs the way lark-push.service says: a push reaches (a fake) FCM', async () => {
  const pki = makePki(path.join(work, 'pki'));
  const fcm = new FakeFcm({ tls: pki.tls, publicKey: pki.fcmPublicKey, account: pki.account });
  await fcm.start();
  try {
    // what an operator puts in the configuration, readable by the lark group
    for (const [from, to] of [[pki.caFile, 'push-ca.pem'], [pki.fcmCredentials, 'fcm.json']]) {
      fs.copyFileSync(from, `/etc/lark/${to}`);
      sh('chown', ['root:lark', `/etc/lark/${to}`]);
      fs.chmodSync(`/etc/lark/${to}`, 0o640);
    }
    fs.appendFileSync('/etc/lark/lark.conf', [
      'fcm_credentials = /etc/lark/fcm.json',
      `fcm_endpoint = ${fcm.url}`,
      `fcm_token_endpoint = ${fcm.tokenUrl}`,
      'push_ca_file = /etc/lark/push-ca.pem', ''].join('\n'));
    await push.start();
    const t = tok('push-bob');
    const dev = await req(`${HTTPS}/v1/devices`, { method: 'POST', t, body: { platform: 'fcm', token: fcmToken('push-bob'), app: 'com.example.chat' } });
    assert.equal(dev.status, 201, dev.body);
    assert.equal((await send(HTTPS, 'push-alice', 'push-bob', 'ring')).status, 201);
    await waitFor(() => fcm.delivered.length === 1, 'the push at FCM', 20000);
    assert.equal(fcm.delivered[0].token, fcmToken('push-bob'));
    await push.stop();
  } finally {
    await fcm.stop();
  }
});

test('stop: SIGTERM drains larkd (exit 0); lighttpd stops', async () => {
  await larkd.stop();
  await stopLighttpd();
});

const r = await run('package: ');
if (r.failed) {
  console.log(`--- larkd ---\n${larkd.logs()}\n--- lark-push ---\n${push.logs()}\n--- lighttpd ---\n${errorLog()}`);
}
for (const s of [push, larkd]) if (s.proc && !exited(s.proc)) s.proc.kill('SIGKILL');
if (lighttpd && !exited(lighttpd)) lighttpd.kill('SIGKILL');
fs.rmSync(work, { recursive: true, force: true });
console.log(`package (deb): ${r.passed} passed, ${r.failed} failed`);
process.exit(r.failed ? 1 : 0);
