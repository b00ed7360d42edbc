// test_errors.mjs - every kind of bad input gets its status and error code,
// nothing crashes, and nothing is half-written. The cases are data.

import crypto from 'node:crypto';
import { assert, test } from './lib/harness.mjs';
import { Stack, secret } from './lib/stack.mjs';
import { Api, request, token } from './lib/client.mjs';

let s;
let conv; // a conversation between alice and bob, for history/send cases

const now = () => Math.floor(Date.now() / 1000);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const hmac = (alg, data, key = secret) =>
  crypto.createHmac(alg, key).update(data).digest().toString('base64url');
function signed(header, claims, alg = 'sha256', key = secret) {
  const head = b64(header) + '.' + b64(claims);
  return head + '.' + hmac(alg, head, key);
}

test('start', async () => {
  s = await new Stack().start();
  const r = await new Api(s.url, 'alice').send('bob', 'first');
  assert.equal(r.status, 201);
  conv = r.json.conversation_id;
});

// ---- bodies of POST /v1/messages -----------------------------------------

const big = (n, ch = 'a') => ch.repeat(n);
const bodyCases = [
  ['truncated JSON', '{"to": "bob", "body": ', 400, 'invalid_json'],
  ['not JSON at all', 'hello', 400, 'invalid_json'],
  ['a JSON array', '[1, 2]', 400, 'invalid_json'],
  ['a JSON string', '"text"', 400, 'invalid_json'],
  ['trailing garbage', '{"to":"bob","body":"x"} extra', 400, 'invalid_json'],
  ['duplicate keys', '{"to":"bob","to":"carol","body":"x"}', 400, 'invalid_json'],
  ['a NUL escape in a string', '{"to":"bob","body":"a\\u0000b"}', 400, 'invalid_json'],
  ['a lone surrogate escape', '{"to":"bob","body":"\\ud800"}', 400, 'invalid_json'],
  ['invalid UTF-8 bytes', Buffer.concat([Buffer.from('{"to":"bob","body":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 400, 'invalid_utf8'],
  ['overlong UTF-8', Buffer.concat([Buffer.from('{"to":"bob","body":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), 400, 'invalid_utf8'],
  ['empty object', {}, 400, 'missing_field'],
  ['no body field', { to: 'bob' }, 400, 'missing_field'],
  ['no recipient', { body: 'x' }, 400, 'missing_field'],
  ['body is a number', { to: 'bob', body: 5 }, 400, 'wrong_type'],
  ['body is null', { to: 'bob', body: null }, 400, 'missing_field'],
  ['to is a number', { to: 7, body: 'x' }, 400, 'wrong_type'],
  ['to is an array', { to: ['bob'], body: 'x' }, 400, 'wrong_type'],
  ['meta is a string', { to: 'bob', body: 'x', meta: 'm' }, 400, 'wrong_type'],
  ['meta is an array', { to: 'bob', body: 'x', meta: [1] }, 400, 'wrong_type'],
  ['client_msg_id is an object', { to: 'bob', body: 'x', client_msg_id: {} }, 400, 'wrong_type'],
  ['type is a bool', { to: 'bob', body: 'x', type: true }, 400, 'wrong_type'],
  ['conversation_id is a number', { conversation_id: 1, body: 'x' }, 400, 'wrong_type'],
  ['both to and conversation_id', { to: 'bob', conversation_id: 'c_' + '0'.repeat(32), body: 'x' }, 400, 'invalid_field'],
  ['to with a space', { to: 'bo b', body: 'x' }, 400, 'invalid_field'],
  ['to with a slash', { to: '../etc', body: 'x' }, 400, 'invalid_field'],
  ['to of 65 characters', { to: big(65), body: 'x' }, 400, 'invalid_field'],
  ['to empty', { to: '', body: 'x' }, 400, 'invalid_field'],
  ['empty text body', { to: 'bob', body: '' }, 400, 'invalid_field'],
  ['type with capitals', { to: 'bob', body: 'x', type: 'Text' }, 400, 'invalid_field'],
  ['type too long', { to: 'bob', body: 'x', type: big(33) }, 400, 'invalid_field'],
  ['client_msg_id empty', { to: 'bob', body: 'x', client_msg_id: '' }, 400, 'invalid_field'],
  ['client_msg_id with a newline', { to: 'bob', body: 'x', client_msg_id: 'a\nb' }, 400, 'invalid_field'],
  ['client_msg_id of 129 bytes', { to: 'bob', body: 'x', client_msg_id: big(129) }, 400, 'invalid_field'],
  ['body of 16 KiB + 1', { to: 'bob', body: big(16385) }, 413, 'message_too_large'],
  ['body of 4097 four-byte characters', { to: 'bob', body: big(4097, '🙂') }, 413, 'message_too_large'],
  ['meta over 4 KiB', { to: 'bob', body: 'x', meta: { pad: big(4100) } }, 413, 'message_too_large'],
  ['request body over 64 KiB', { to: 'bob', body: 'x', pad: big(70000) }, 413, 'request_too_large'],
  ['request body of 900 KiB', { to: 'bob', body: 'x', pad: big(900 * 1024) }, 413, 'request_too_large'],
  // past lighttpd's own wall: lighttpd answers, with the same JSON error body
  ['request body of 2 MiB', { to: 'bob', body: 'x', pad: big(2 * 1024 * 1024) }, 413, 'request_too_large'],
  ['unknown conversation', { conversation_id: 'c_' + 'f'.repeat(32), body: 'x' }, 404, 'not_found'],
  ['malformed conversation id', { conversation_id: "c_1' OR '1'='1", body: 'x' }, 404, 'not_found'],
];

test('bad message bodies: each its status and code, nothing stored', async () => {
  const alice = new Api(s.url, 'alice');
  const failures = [];
  for (const [name, body, status, code] of bodyCases) {
    const r = await alice.post('/v1/messages', body);
    if (r.status !== status || r.json?.error?.code !== code || typeof r.json?.error?.message !== 'string')
      failures.push(`${name}: got ${r.status} ${r.body.slice(0, 200)}`);
  }
  assert.deepEqual(failures, []);
  const h = await alice.get(`/v1/conversations/${conv}/messages`);
  assert.deepEqual(h.json.messages.map((m) => m.body), ['first'], 'no bad request stored anything');
  const inbox = await new Api(s.url, 'bob').poll('?since=0&timeout=0');
  assert.equal(inbox.json.events.length, 1, 'no bad request reached an inbox');
});

test('limits are inclusive: a 16 KiB body and a 4 KiB meta are accepted', async () => {
  const alice = new Api(s.url, 'alice');
  let r = await alice.send('bob', big(16384));
  assert.equal(r.status, 201, r.body);
  assert.equal(r.json.body.length, 16384);
  r = await alice.send('bob', big(4096, '🙂')); // 16,384 bytes of UTF-8
  assert.equal(r.status, 201, r.body);
  const meta = { p: big(4096 - 8) }; // {"p":"..."} is exactly 4096 bytes
  assert.equal(JSON.stringify(meta).length, 4096);
  r = await alice.send('bob', 'x', { meta });
  assert.equal(r.status, 201, r.body);
});

const typeCases = [
  ['text/plain', 415, 'unsupported_media_type'],
  ['application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
  ['application/jsonp', 415, 'unsupported_media_type'],
  ['application/json; charset=utf-8', 201, null],
  ['Application/JSON', 201, null],
];

test('the body must be sent as application/json', async () => {
  const failures = [];
  for (const [ct, status, code] of typeCases) {
    const r = await request(s.url, 'POST', '/v1/messages', {
      tok: token('alice'), headers: { 'Content-Type': ct },
      body: JSON.stringify({ to: 'bob', body: `ct ${ct}`, client_msg_id: crypto.randomUUID() }) });
    if (r.status !== status || (code && r.json?.error?.code !== code)) failures.push(`${ct}: ${r.status} ${r.body}`);
  }
  const none = await request(s.url, 'POST', '/v1/messages', {
    tok: token('alice'), headers: { 'Content-Type': '' }, body: '{"to":"bob","body":"x"}' });
  if (none.status !== 415) failures.push(`no content type: ${none.status}`);
  const empty = await request(s.url, 'POST', '/v1/messages', { tok: token('alice'), body: '' });
  if (empty.status !== 400 || empty.json.error.code !== 'invalid_json') failures.push(`empty body: ${empty.status}`);
  assert.deepEqual(failures, []);
});

// ---- tokens --------------------------------------------------------------

const tokenCases = () => [
  ['no token at all', null, 'missing_token'],
  ['a Basic credential', 'Basic YWxpY2U6cHc=', 'invalid_token', true],
  ['Bearer with nothing', 'Bearer ', 'missing_token', true],
  ['garbage', 'not-a-jwt', 'invalid_token'],
  ['two segments', 'abc.def', 'invalid_token'],
  ['bad signature', token('alice', { secret: 'another-secret-of-enough-length' }), 'invalid_token'],
  ['signature of another token', token('alice').split('.').slice(0, 2).join('.') + '.' + token('bob').split('.')[2], 'invalid_token'],
  ['alg none, no signature', b64({ alg: 'none', typ: 'JWT' }) + '.' + b64({ sub: 'alice', exp: now() + 600 }) + '.', 'invalid_token'],
  ['alg none with a signature', signed({ alg: 'none' }, { sub: 'alice', exp: now() + 600 }), 'invalid_token'],
  ['HS384 with the right secret', signed({ alg: 'HS384', typ: 'JWT' }, { sub: 'alice', exp: now() + 600 }, 'sha384'), 'invalid_token'],
  ['HS512 with the right secret', signed({ alg: 'HS512', typ: 'JWT' }, { sub: 'alice', exp: now() + 600 }, 'sha512'), 'invalid_token'],
  ['RS256 header over an HMAC', signed({ alg: 'RS256', typ: 'JWT' }, { sub: 'alice', exp: now() + 600 }), 'invalid_token'],
  ['expired', token('alice', { exp: now() - 10 }), 'token_expired'],
  ['no exp', token('alice', { claims: { sub: 'alice', iat: now() } }), 'invalid_token'],
  ['exp as a string', token('alice', { claims: { sub: 'alice', exp: String(now() + 600) } }), 'invalid_token'],
  ['nbf in the future', token('alice', { claims: { sub: 'alice', exp: now() + 600, nbf: now() + 300 } }), 'invalid_token'],
  ['no sub', token('x', { claims: { exp: now() + 600 } }), 'invalid_token'],
  ['sub empty', token('', {}), 'invalid_token'],
  ['sub with a space', token('al ice'), 'invalid_token'],
  ['sub with a quote', token("alice'--"), 'invalid_token'],
  ['sub of 65 characters', token(big(65)), 'invalid_token'],
  ['sub is a number', token('x', { claims: { sub: 42, exp: now() + 600 } }), 'invalid_token'],
  ['claims not JSON', b64({ alg: 'HS256' }) + '.' + Buffer.from('{oops').toString('base64url') + '.' + hmac('sha256', b64({ alg: 'HS256' }) + '.' + Buffer.from('{oops').toString('base64url')), 'invalid_token'],
  ['a 5 KiB token', token('alice', { claims: { sub: 'alice', exp: now() + 600, pad: big(5000) } }), 'invalid_token'],
];

test('bad tokens get 401 with the right code on every authenticated endpoint', async () => {
  const failures = [];
  const endpoints = [
    ['POST', '/v1/messages', { to: 'bob', body: 'x' }],
    ['GET', `/v1/conversations/${conv}/messages`],
    ['GET', '/v1/poll?timeout=0'],
    ['GET', '/v1/events'],
    ['POST', '/v1/ack', { seq: 1 }],
  ];
  for (const [name, tok, code, raw] of tokenCases()) {
    for (const [method, path, body] of endpoints) {
      const headers = {};
      if (tok !== null) headers.Authorization = raw ? tok : `Bearer ${tok}`;
      const r = await request(s.url, method, path, { headers, body });
      if (r.status !== 401 || r.json?.error?.code !== code)
        failures.push(`${name} ${method} ${path}: ${r.status} ${r.body.slice(0, 120)}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('EventSource-style tokens: ?access_token= and the lark_token cookie, only on events and poll', async () => {
  const tok = token('bob');
  let r = await request(s.url, 'GET', `/v1/poll?timeout=0&since=0&access_token=${tok}`);
  assert.equal(r.status, 200);
  r = await request(s.url, 'GET', '/v1/poll?timeout=0', { headers: { Cookie: `theme=dark; lark_token=${tok}; x=1` } });
  assert.equal(r.status, 200);
  r = await request(s.url, 'GET', `/v1/poll?timeout=0&access_token=${token('bob', { exp: now() - 5 })}`);
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'token_expired');
  r = await request(s.url, 'POST', `/v1/messages?access_token=${tok}`, { body: { to: 'alice', body: 'x' } });
  assert.equal(r.status, 401, 'query tokens are not accepted for sends');
  assert.equal(r.json.error.code, 'missing_token');
  r = await request(s.url, 'GET', `/v1/conversations/${conv}/messages`, { headers: { Cookie: `lark_token=${tok}` } });
  assert.equal(r.status, 401, 'nor cookies for history');
});

// ---- query strings and headers ---------------------------------------------

const queryCases = [
  ['/v1/poll?timeout=61', 'invalid_request'],
  ['/v1/poll?timeout=-1', 'invalid_request'],
  ['/v1/poll?timeout=abc', 'invalid_request'],
  ['/v1/poll?timeout=1e3', 'invalid_request'],
  ['/v1/poll?since=-1', 'invalid_request'],
  ['/v1/poll?since=99999999999999999999999', 'invalid_request'],
  ['/v1/poll?since=1&since=2', 'invalid_request'],
  ['/v1/poll?limit=0', 'invalid_request'],
  ['/v1/poll?limit=1001', 'invalid_request'],
  ['/v1/poll?since=%zz', 'invalid_request'],
  ['/v1/poll?since=%00', 'invalid_request'],
  ['/v1/events?since=x', 'invalid_request'],
  ['/v1/events?padding=yes', 'invalid_request'],
  ['HISTORY?limit=0', 'invalid_request'],
  ['HISTORY?limit=201', 'invalid_request'],
  ['HISTORY?before=x', 'invalid_request'],
  ['HISTORY?after=-3', 'invalid_request'],
];

test('bad query parameters get 400 invalid_request', async () => {
  const bob = new Api(s.url, 'bob');
  const failures = [];
  for (const [path, code] of queryCases) {
    const p = path.replace('HISTORY', `/v1/conversations/${conv}/messages`);
    const r = await bob.get(p);
    if (r.status !== 400 || r.json?.error?.code !== code) failures.push(`${p}: ${r.status} ${r.body}`);
  }
  const lei = await bob.get('/v1/events', { headers: { 'Last-Event-ID': 'abc' } });
  if (lei.status !== 400) failures.push(`Last-Event-ID abc: ${lei.status}`);
  const path404 = await bob.get('/v1/conversations/%zz/messages');
  if (path404.status !== 400) failures.push(`bad escape in path: ${path404.status}`);
  assert.deepEqual(failures, []);
});

const ackCases = [
  [{}, 400, 'missing_field'],
  [{ seq: -1 }, 400, 'invalid_field'],
  [{ seq: '5' }, 400, 'wrong_type'],
  [{ seq: 1.5 }, 400, 'wrong_type'],
  [{ seq: true }, 400, 'wrong_type'],
  ['{"seq": 9223372036854775808}', 400, 'invalid_json'], // beyond any integer JSON parsers keep
  ['[1]', 400, 'invalid_json'],
];

test('bad acks get their codes', async () => {
  const bob = new Api(s.url, 'bob');
  const failures = [];
  for (const [body, status, code] of ackCases) {
    const r = await bob.post('/v1/ack', body);
    if (r.status !== status || r.json?.error?.code !== code) failures.push(`${JSON.stringify(body)}: ${r.status} ${r.body}`);
  }
  assert.deepEqual(failures, []);
});

test('after all of that the server is healthy and nothing leaked', async () => {
  const r = await request(s.url, 'GET', '/v1/healthz');
  assert.equal(r.status, 200);
  await s.stop(); // fails on a sanitizer report or an unclean exit
});

test('aud and iss are enforced when configured', async () => {
  const t = await new Stack({ LARK_JWT_AUD: 'lark-app', LARK_JWT_ISS: 'https://idp.example' }).start();
  try {
    const ok = { sub: 'alice', exp: now() + 600, aud: 'lark-app', iss: 'https://idp.example' };
    const cases = [
      [ok, 200],
      [{ ...ok, aud: ['other', 'lark-app'] }, 200],
      [{ ...ok, aud: 'other' }, 401],
      [{ ...ok, aud: undefined }, 401],
      [{ ...ok, iss: 'https://evil.example' }, 401],
      [{ ...ok, iss: undefined }, 401],
    ];
    for (const [claims, status] of cases) {
      const r = await request(t.url, 'GET', '/v1/poll?timeout=0', { tok: token('x', { claims }) });
      assert.equal(r.status, status, JSON.stringify(claims));
    }
  } finally {
    await t.stop();
  }
});
