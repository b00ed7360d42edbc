// test_lb.mjs - two lark servers on one PostgreSQL database behind HAProxy,
// with the example configuration of docs/DEPLOY.md (conf/haproxy/lark.cfg;
// only the certificate, the addresses, syslog and maxconn (the test machine
// allows fewer descriptors) are replaced): TLS at HAProxy, SSE, long-poll and WebSocket through it,
// HTTP redirected to HTTPS, and the health check taking a server whose
// larkd stopped out of the rotation while its clients resume on the other.
//
// PostgreSQL runs only; needs haproxy (tools/deps.sh test installs it).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import WebSocket from 'ws';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { Stack, backend, exited, freePort, sleep, tmpDir, removeTmpDir, top, track, waitExit, waitFor } from './lib/stack.mjs';
import { metrics, token } from './lib/client.mjs';

const NAME = 'two servers behind HAProxy (conf/haproxy/lark.cfg): TLS, SSE, long-poll, WebSocket, failover';
const haveHaproxy = spawnSync('sh', ['-c', 'command -v haproxy']).status === 0;

let ca;

function req(url, { method = 'GET', tok, body, headers = {} } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const h = { ...headers };
  let data = null;
  if (tok) h.Authorization = `Bearer ${tok}`;
  if (body !== undefined) {
    data = Buffer.from(JSON.stringify(body));
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = data.length;
  }
  return new Promise((resolve, reject) => {
    const r = mod.request(u, { method, headers: h, ca, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    r.setTimeout(40000, () => r.destroy(new Error(`${method} ${url} timed out`)));
    r.on('error', reject);
    if (data) r.write(data);
    r.end();
  });
}

/** An SSE stream through the load balancer: stored events as they come. */
function sse(url, tok, lastId) {
  const s = { events: [], closed: false };
  const headers = { Authorization: `Bearer ${tok}`, Accept: 'text/event-stream' };
  if (lastId !== undefined) headers['Last-Event-ID'] = String(lastId);
  s.ready = new Promise((resolve, reject) => {
    s.req = https.get(url, { headers, ca, agent: false }, (res) => {
      s.status = res.statusCode;
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        pending += chunk;
        let i;
        while ((i = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, i);
          pending = pending.slice(i + 2);
          const id = /^id: (\d+)$/m.exec(block);
          const d = /^data: (.*)$/m.exec(block);
          if (id && d) s.events.push(JSON.parse(d[1]));
        }
      });
      res.on('end', () => { s.closed = true; });
      res.on('error', () => { s.closed = true; });
      resolve(s);
    });
    s.req.on('error', (e) => { s.closed = true; reject(e); });
  });
  s.close = () => s.req.destroy();
  return s;
}

if (backend !== 'postgres') {
  skip(NAME, 'PostgreSQL only (the servers share one database); runs with --backend=postgres');
} else if (!haveHaproxy) {
  skip(NAME, 'needs haproxy (tools/deps.sh test installs it)');
} else {
  test(NAME, async () => {
    const one = await new Stack({ LARK_SEND_RATE: '0' }).start();
    const two = await new Stack({ LARK_SEND_RATE: '0', LARK_DB: one.larkdEnv().LARK_DB }).start();
    cleanup(async () => { await two.stop(); await one.stop(); });
    const dir = tmpDir('lark-lb-');
    cleanup(() => removeTmpDir(dir));

    // a throwaway certificate, in one file as HAProxy wants it
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const pem = path.join(dir, 'lb.pem');
    fs.writeFileSync(pem, fs.readFileSync(cert) + fs.readFileSync(key));
    ca = fs.readFileSync(cert);

    // the example, with its placeholders filled in
    const [p80, p443] = [await freePort(), await freePort()];
    let cfg = fs.readFileSync(path.join(top, 'conf/haproxy/lark.cfg'), 'utf8');
    const swaps = [
      ['    log /dev/log local0\n', ''], // no syslog here
      ['    maxconn 20000\n', '    maxconn 4000\n'], // 2 fds each: within this machine's limit
      ['    bind :80\n', `    bind 127.0.0.1:${p80}\n`],
      ['bind :443 ssl crt /etc/haproxy/certs/chat.example.com.pem', `bind 127.0.0.1:${p443} ssl crt ${pem}`],
      ['server lark1 10.0.0.11:80', `server lark1 127.0.0.1:${one.port}`],
      ['server lark2 10.0.0.12:80', `server lark2 127.0.0.1:${two.port}`],
    ];
    for (const [from, to] of swaps) {
      assert.ok(cfg.includes(from), `conf/haproxy/lark.cfg no longer has "${from.trim()}"`);
      cfg = cfg.replace(from, to);
    }
    const cfgFile = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(cfgFile, cfg);
    const check = spawnSync('haproxy', ['-c', '-f', cfgFile], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const log = path.join(dir, 'haproxy.log');
    const out = fs.openSync(log, 'a');
    const lb = spawn('haproxy', ['-db', '-f', cfgFile], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    track(lb);
    cleanup(async () => { lb.kill('SIGTERM'); await waitExit(lb, 5000); });
    const LB = `https://127.0.0.1:${p443}`;
    await waitFor(async () => {
      if (exited(lb)) throw new Error(`haproxy exited: ${fs.readFileSync(log, 'utf8')}`);
      return (await req(`${LB}/v1/healthz`).catch(() => ({}))).status === 200;
    }, 'HAProxy up', 20000, 100);

    // plain HTTP is sent to HTTPS
    const plain = await req(`http://127.0.0.1:${p80}/v1/healthz`);
    assert.equal(plain.status, 301);
    assert.match(plain.headers.location, /^https:\/\//);

    // SSE, long-poll and WebSocket through it
    const bob = token('lb-bob');
    const alice = token('lb-alice');
    const stream = await sse(`${LB}/v1/events`, bob).ready;
    assert.equal(stream.status, 200);
    const sent = await req(`${LB}/v1/messages`, { method: 'POST', tok: alice, body: { to: 'lb-bob', body: 'one' } });
    assert.equal(sent.status, 201, sent.body);
    await waitFor(() => stream.events.length === 1, 'the event through HAProxy');
    const poll = await req(`${LB}/v1/poll?since=0&timeout=5`, { tok: bob });
    assert.deepEqual(poll.json.events.map((e) => e.data.body), ['one']);
    const ws = new WebSocket(`wss://127.0.0.1:${p443}/v1/ws`, { ca });
    const lines = [];
    ws.on('message', (d) => { for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l)); });
    await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
    ws.send(JSON.stringify({ type: 'auth', token: bob, since: 0 }) + '\n');
    await waitFor(() => lines.some((l) => l.type === 'message' && l.data.body === 'one'), 'the event over WSS');
    ws.terminate();

    // the server holding the stream goes away: HAProxy takes it out, the
    // client resumes on the other server from its last seq
    const held = async (s) => (await metrics(s.url))['lark_held_connections{transport="sse"}'];
    await waitFor(async () => (await held(one)) + (await held(two)) === 1, 'the stream held by one server');
    const [holder, other] = (await held(one)) === 1 ? [one, two] : [two, one];
    const last = stream.events[stream.events.length - 1].seq;
    assert.equal(await holder.stopLarkd(), 0);
    await waitFor(() => stream.closed, 'the stream ended by the drain');
    await req(`${LB}/v1/messages`, { method: 'POST', tok: alice, body: { to: 'lb-bob', body: 'meanwhile' } })
      .then((r) => assert.ok(r.status === 201 || r.status === 503, r.body));
    // within fall x inter (2 x 2 s) the check has taken it out
    await sleep(5000);
    for (let i = 0; i < 10; i++) {
      const r = await req(`${LB}/v1/healthz`);
      assert.equal(r.status, 200, `probe ${i} through HAProxy after the check: ${r.body}`);
    }
    const again = await req(`${LB}/v1/messages`, { method: 'POST', tok: alice, body: { to: 'lb-bob', body: 'two' } });
    assert.equal(again.status, 201, again.body);
    const resumed = await sse(`${LB}/v1/events`, bob, last).ready;
    await waitFor(() => resumed.events.some((e) => e.data.body === 'two'), 'the resumed stream');
    assert.equal(resumed.events[0].seq, last + 1, 'resumed right after the last seq');
    assert.equal(await held(other), 1);
    resumed.close();
  }, { timeout: 120000 });
}
