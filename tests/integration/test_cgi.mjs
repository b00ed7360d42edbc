// test_cgi.mjs - larkd as a plain CGI program (GATEWAY_INTERFACE set, one
// request from the environment and stdin, the answer on stdout), for hosts
// that only offer CGI. Held requests cannot wait there: they answer at once.
// On the postgres back end every CGI process connects to the run's cluster
// (a host that only offers CGI may still have a database server).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assert, test } from './lib/harness.mjs';
import { build, freshDb, secret } from './lib/stack.mjs';
import { token } from './lib/client.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lark-cgi-'));
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
  const r = spawnSync(path.join(build, 'larkd'), [], { env, input, timeout: 20000 });
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
  r = cgi('GET', '/v1/poll?since=1&timeout=30', { tok: b });
  assert.deepEqual(r.json, { events: [], next: 1 }, 'no waiting under CGI');
  r = cgi('GET', '/v1/events?since=0', { tok: b });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream');
  assert.match(r.body, /^retry: \d+\n\nevent: hello\ndata: \{\}\n\nid: 1\nevent: message\ndata: \{/);
  r = cgi('POST', '/v1/messages', { tok: a, body: { to: 'cgi-bob' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'missing_field');
  r = cgi('POST', '/v1/messages', { body: { to: 'cgi-bob', body: 'x' } });
  assert.equal(r.status, 401);
  fs.rmSync(dir, { recursive: true, force: true });
});
