// test_dev.mjs - development tokens (docs/API.md "Development tokens"):
// POST /v1/dev/token exists only with dev_tokens = 1, which larkd accepts
// only with the published development secret.

import fs from 'node:fs';
import { assert, test } from './lib/harness.mjs';
import { Stack, devSecret } from './lib/stack.mjs';
import { request, token } from './lib/client.mjs';

let off; // the default: dev_tokens off, a secret of its own
let on;  // dev_tokens = 1 with the development secret

test('start: one stack with development tokens off, one with them on', async () => {
  off = await new Stack().start();
  on = await new Stack({ LARK_JWT_SECRET: devSecret, LARK_DEV_TOKENS: '1' }).start();
});

test('off (the default): /v1/dev/ is unknown for every method', async () => {
  for (const [method, path] of [['POST', '/v1/dev/token'], ['GET', '/v1/dev/token'],
    ['OPTIONS', '/v1/dev/token'], ['POST', '/v1/dev/other']]) {
    const r = await request(off.url, method, path, { body: method === 'POST' ? { user: 'alice' } : undefined });
    assert.equal(r.status, 404, `${method} ${path}: ${r.body}`);
    assert.equal(r.json.error.code, 'not_found');
    assert.equal(r.headers.allow, undefined);
  }
});

test('on: a token for a name, accepted by every endpoint until it expires', async () => {
  const t0 = Date.now();
  const r = await request(on.url, 'POST', '/v1/dev/token', { body: { user: 'dev-alice' } });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.user, 'dev-alice');
  const exp = Date.parse(r.json.expires_at);
  assert.ok(Math.abs(exp - (t0 + 24 * 3600 * 1000)) < 5000, r.json.expires_at);
  const claims = JSON.parse(Buffer.from(r.json.token.split('.')[1], 'base64url'));
  assert.equal(claims.sub, 'dev-alice');
  assert.equal(JSON.parse(Buffer.from(r.json.token.split('.')[0], 'base64url')).alg, 'HS256');
  // the token works, in the header and in the query string
  const sent = await request(on.url, 'POST', '/v1/messages', {
    tok: r.json.token, body: { to: 'dev-bob', client_msg_id: 'd1', body: 'hello' },
  });
  assert.equal(sent.status, 201, sent.body);
  assert.equal(sent.json.sender, 'dev-alice');
  const bobTok = (await request(on.url, 'POST', '/v1/dev/token', { body: { user: 'dev-bob' } })).json.token;
  const poll = await request(on.url, 'GET', `/v1/poll?timeout=0&access_token=${bobTok}`);
  assert.equal(poll.status, 200, poll.body);
  assert.equal(poll.json.events[0].data.body, 'hello');
  // it is a token like any other: signed with the development secret
  const own = token('dev-carol', { secret: devSecret });
  assert.equal((await request(on.url, 'GET', '/v1/conversations', { tok: own })).status, 200);
});

test('on: bad requests get their error codes', async () => {
  const cases = [
    [{}, 400, 'missing_field'],
    [{ user: null }, 400, 'missing_field'],
    [{ user: 7 }, 400, 'wrong_type'],
    [{ user: '' }, 400, 'invalid_field'],
    [{ user: 'a b' }, 400, 'invalid_field'],
    [{ user: 'x'.repeat(65) }, 400, 'invalid_field'],
    ['{"user": ', 400, 'invalid_json'],
  ];
  for (const [body, status, code] of cases) {
    const r = await request(on.url, 'POST', '/v1/dev/token', { body });
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.body}`);
    assert.equal(r.json.error.code, code, JSON.stringify(body));
  }
  const none = await request(on.url, 'POST', '/v1/dev/token');
  assert.equal(none.status, 400);
  const get = await request(on.url, 'GET', '/v1/dev/token');
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
});

test('on: larkd says so in its log', async () => {
  assert.match(fs.readFileSync(on.larkdLog, 'utf8'), /development tokens are on/);
  assert.doesNotMatch(fs.readFileSync(off.larkdLog, 'utf8'), /development tokens are on/);
});

test('dev_tokens = 1 with a secret of its own: larkd refuses to start', async () => {
  for (const env of [{ LARK_DEV_TOKENS: '1' }, // the stack's own test secret
    { LARK_DEV_TOKENS: '1', LARK_JWT_ALG: 'RS256', LARK_JWT_KEY_FILE: '/nonexistent' }]) {
    const bad = new Stack(env);
    await assert.rejects(bad.startLarkd(), /larkd exited at start/);
    assert.match(fs.readFileSync(bad.larkdLog, 'utf8'), /dev_tokens = 1 needs the development JWT secret/);
    assert.notEqual(bad.larkd.exitCode, 0);
    fs.rmSync(bad.dir, { recursive: true, force: true });
  }
});

test('stop', async () => {
  await off.stop();
  await on.stop();
});
