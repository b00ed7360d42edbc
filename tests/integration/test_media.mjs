// test_media.mjs - media (API.md "Media (attachments)") over real lighttpd +
// larkd, on local storage and on S3 (tests/fakes/s3.mjs, a fake that
// checks every signature as S3 does): upload in one step and in two, send,
// and the recipient downloads the very bytes; who may download (404 for
// anyone else); refused ids; Range, ETag, HEAD, nosniff, dispositions; a
// 413 before the body is sent and larkd's memory during a 24 MiB upload;
// rate and quota; kill -9 in the middle of an upload; retention.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { assert, test } from './lib/harness.mjs';
import { Stack, sleep, waitFor } from './lib/stack.mjs';
import { Api, metrics, request, token } from './lib/client.mjs';
import { FakeS3 } from '../fakes/s3.mjs';

const MiB = 1024 * 1024;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const bytes = (n, seed = 1) => {
  const b = Buffer.alloc(n);
  for (let i = 0, x = seed; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
};
// a 1x1 PNG, for the content-type checks
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
  '1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082', 'hex');

let s;   // local storage
let s3;  // the fake S3
let ss;  // a stack on it

/** One-step upload as user: the API answer. */
function upload(stack, user, body, { name, type = 'application/octet-stream', headers = {} } = {}) {
  const q = name === undefined ? '' : `?name=${encodeURIComponent(name)}`;
  return request(stack.url, 'POST', `/v1/media${q}`, { tok: token(user), body, headers: { 'Content-Type': type, ...headers } });
}

async function uploaded(stack, user, body, opts) {
  const r = await upload(stack, user, body, opts);
  assert.equal(r.status, 201, r.body);
  return r.json.media;
}

/** GET url (absolute) as raw bytes. */
function fetchRaw(url, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`${url} timed out`)));
    req.end();
  });
}

/** GET /v1/media/{id} as user, following a redirect (S3) as clients do. */
async function download(stack, user, id, headers = {}) {
  const h = user ? { Authorization: `Bearer ${token(user)}`, ...headers } : headers;
  const r = await fetchRaw(`${stack.url}/v1/media/${id}`, h);
  if (r.status !== 302) return r;
  const loc = r.headers.location;
  const followed = await fetchRaw(loc, headers);
  followed.redirect = loc;
  return followed;
}

function json(r) {
  return JSON.parse(r.body.toString('utf8'));
}

/** The two-step flow: declare, PUT the bytes where told; the declaration answer. */
async function twoStep(stack, user, body, { type = 'application/octet-stream', name = 'two.bin', putBody = body } = {}) {
  const d = await new Api(stack.url, user).post('/v1/media/uploads', { content_type: type, size: body.length, name, sha256: sha256(body) });
  assert.equal(d.status, 201, d.body);
  assert.equal(d.json.media.status, 'pending');
  assert.equal(d.json.upload.method, 'PUT');
  const put = await putTo(d.json.upload.url, d.json.upload.headers, putBody);
  return { decl: d.json, put };
}

function putTo(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers: { ...headers, 'Content-Length': body.length }, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

test('start: local storage, and a fake S3 with a stack on it', async () => {
  s = await new Stack().start();
  s3 = await new FakeS3().start();
  ss = await new Stack(s3.env()).start();
});

// ---- local storage -------------------------------------------------------------

test('one step: upload, send, the recipient downloads identical bytes (lighttpd sends them)', async () => {
  const body = bytes(300 * 1024 + 7, 2);
  const m = await uploaded(s, 'm-alice', body, { name: 'holiday.jpg', type: 'image/jpeg' });
  assert.match(m.id, /^m_[0-9a-f]{32}$/);
  assert.equal(m.size, body.length);
  assert.equal(m.sha256, sha256(body));
  assert.equal(m.name, 'holiday.jpg');
  assert.equal(m.content_type, 'image/jpeg');
  assert.equal(m.status, 'ready');
  assert.ok(m.created_at);
  // the file is named by its hash under the media directory
  assert.ok(fs.existsSync(path.join(s.dir, 'media', m.sha256.slice(0, 2), m.sha256)));

  const alice = new Api(s.url, 'm-alice');
  const sent = await alice.send('m-bob', '', { media: [m.id] });
  assert.equal(sent.status, 201, sent.body);
  assert.deepEqual(sent.json.media, [{ id: m.id, content_type: 'image/jpeg', size: body.length, sha256: m.sha256, name: 'holiday.jpg' }]);
  assert.equal(sent.json.body, '');
  // bob's inbox carries the media too
  const p = await new Api(s.url, 'm-bob').poll('?since=0&timeout=0');
  assert.deepEqual(p.json.events[0].data.media, sent.json.media);

  const r = await download(s, 'm-bob', m.id);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(body), 'the very bytes');
  assert.equal(r.headers['content-type'], 'image/jpeg');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers.etag, `"${m.sha256}"`);
  assert.equal(r.headers['content-disposition'], "inline; filename=\"holiday.jpg\"; filename*=UTF-8''holiday.jpg");
  assert.equal(r.headers['content-security-policy'], 'sandbox');
});

test('two steps through lark: declare, PUT to the signed URL, send, download', async () => {
  const body = bytes(200 * 1024, 3);
  const { decl, put } = await twoStep(s, 'm-alice', body, { type: 'application/pdf', name: 'r\u00e9sum\u00e9 "final".pdf' });
  assert.equal(put.status, 200, put.body);
  assert.equal(JSON.parse(put.body).media.status, 'ready');
  assert.match(decl.upload.url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/media\/m_[0-9a-f]{32}\/upload\?key=[0-9a-f]{64}$/);
  assert.deepEqual(decl.upload.headers, { 'Content-Type': 'application/pdf' });
  assert.ok(Date.parse(decl.upload.expires_at) > Date.now());
  // the URL is spent
  assert.equal((await putTo(decl.upload.url, decl.upload.headers, body)).status, 409);
  const sent = await new Api(s.url, 'm-alice').send('m-bob', 'the file', { media: [decl.media.id] });
  assert.equal(sent.status, 201, sent.body);
  const r = await download(s, 'm-bob', decl.media.id);
  assert.ok(r.body.equals(body));
  // not inline, and the name survives quoting and encoding
  assert.equal(r.headers['content-disposition'],
    "attachment; filename=\"r__sum__ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf");
});

test('two steps: a wrong key, other bytes, a short body are refused; nothing is stored', async () => {
  const body = bytes(5000, 4);
  const d = await new Api(s.url, 'm-alice').post('/v1/media/uploads', { size: body.length, sha256: sha256(body) });
  assert.equal(d.status, 201);
  const url = d.json.upload.url;
  let r = await putTo(url.replace(/key=[0-9a-f]{4}/, 'key=0000'), {}, body);
  assert.equal(r.status, 403);
  assert.equal(JSON.parse(r.body).error.code, 'forbidden');
  r = await putTo(url.replace(/key=.*/, ''), {}, body);
  assert.equal(r.status, 403);
  r = await putTo(url, {}, bytes(5000, 5)); // same size, other bytes
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).error.code, 'invalid_request');
  r = await putTo(url, {}, body.subarray(0, 10));
  assert.equal(r.status, 400);
  r = await putTo(url, {}, Buffer.concat([body, Buffer.from('x')]));
  assert.equal(r.status, 413);
  // still pending: a message may not carry it
  const sent = await new Api(s.url, 'm-alice').send('m-bob', 'x', { media: [d.json.media.id] });
  assert.equal(sent.status, 409);
  assert.equal(sent.json.error.code, 'media_pending');
  // the uploader asking for it hears the same
  const g = await download(s, 'm-alice', d.json.media.id);
  assert.equal(g.status, 409);
  // and then the right bytes do it
  assert.equal((await putTo(url, {}, body)).status, 200);
});

test('who may download: the uploader, members of a conversation that carries it; 404 for anyone else', async () => {
  const body = bytes(1000, 6);
  const m = await uploaded(s, 'g-alice', body, { name: 'plan.txt', type: 'text/plain' });
  // before any message: the uploader only
  assert.equal((await download(s, 'g-alice', m.id)).status, 200);
  const stranger = await download(s, 'g-stranger', m.id);
  assert.equal(stranger.status, 404);
  assert.equal(json(stranger).error.code, 'not_found');
  const unknown = await download(s, 'g-stranger', 'm_00000000000000000000000000000000');
  assert.deepEqual(json(unknown), json(stranger), 'someone else\'s looks like none at all');
  assert.equal((await download(s, 'g-stranger', 'not-an-id')).status, 404);
  assert.equal((await download(s, null, m.id)).status, 401);
  // a group that carries it
  const alice = new Api(s.url, 'g-alice');
  const g = await alice.post('/v1/conversations', { type: 'group', title: 'g', members: ['g-bob', 'g-carol'] });
  assert.equal((await alice.post('/v1/messages', { conversation_id: g.json.id, client_msg_id: 'g1', body: 'see', media: [m.id] })).status, 201);
  for (const u of ['g-bob', 'g-carol']) {
    const r = await download(s, u, m.id);
    assert.equal(r.status, 200, u);
    assert.ok(r.body.equals(body));
    assert.equal(r.headers['content-disposition'].split(';')[0], 'attachment', 'text is never inline');
  }
  assert.equal((await download(s, 'g-stranger', m.id)).status, 404);
  // carol leaves: no longer
  const left = await request(s.url, 'DELETE', `/v1/conversations/${g.json.id}/members/g-carol`, { tok: token('g-carol') });
  assert.equal(left.status, 204);
  assert.equal((await download(s, 'g-carol', m.id)).status, 404);
  // the token may come in the query (an <img src> cannot set headers)
  const q = await fetchRaw(`${s.url}/v1/media/${m.id}?access_token=${token('g-bob')}`);
  assert.equal(q.status, 200);
});

test('sends: someone else\'s, unknown, malformed, too many media are refused; over WebSocket too', async () => {
  const mine = await uploaded(s, 'r-alice', bytes(10, 7));
  const theirs = await uploaded(s, 'r-bob', bytes(10, 8));
  const alice = new Api(s.url, 'r-alice');
  const cases = [
    [[theirs.id], 400, 'invalid_media'],
    [['m_0123456789abcdef0123456789abcdef'], 400, 'invalid_media'],
    [['m_x'], 400, 'invalid_media'],
    [[], 400, 'invalid_field'],
    [[mine.id, mine.id], 400, 'invalid_field'],
    [Array(11).fill(mine.id), 400, 'too_many'],
    [mine.id, 400, 'wrong_type'],
    [[5], 400, 'wrong_type'],
  ];
  for (const [media, status, code] of cases) {
    const r = await alice.post('/v1/messages', { to: 'r-bob', client_msg_id: crypto.randomUUID(), body: 'x', media });
    assert.equal(r.status, status, JSON.stringify(media));
    assert.equal(r.json.error.code, code, JSON.stringify(media));
  }
  // no body and no media is still refused; media without body is fine
  const nobody = await alice.post('/v1/messages', { to: 'r-bob', client_msg_id: 'nb' });
  assert.equal(nobody.json.error.code, 'missing_field');
  // several, in order
  const two = await uploaded(s, 'r-alice', bytes(20, 9), { name: 'b.bin' });
  const ok = await alice.post('/v1/messages', { to: 'r-bob', client_msg_id: 'two', media: [two.id, mine.id] });
  assert.equal(ok.status, 201, ok.body);
  assert.deepEqual(ok.json.media.map((x) => x.id), [two.id, mine.id]);
  // WebSocket: the same fields
  const ws = new WebSocket(s.url.replace(/^http/, 'ws') + '/v1/ws');
  const lines = [];
  let raw = '';
  ws.on('message', (d) => {
    raw += d.toString();
    for (let i; (i = raw.indexOf('\n')) >= 0; raw = raw.slice(i + 1)) lines.push(JSON.parse(raw.slice(0, i)));
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'auth', token: token('r-alice'), since: null }) + '\n');
  ws.send(JSON.stringify({ type: 'send', to: 'r-bob', client_msg_id: 'ws1', media: [mine.id] }) + '\n');
  ws.send(JSON.stringify({ type: 'send', to: 'r-bob', client_msg_id: 'ws2', media: [theirs.id] }) + '\n');
  await waitFor(() => lines.some((l) => l.type === 'sent') && lines.some((l) => l.type === 'error'), 'the answers');
  const sentLine = lines.find((l) => l.type === 'sent');
  assert.equal(sentLine.message.media[0].id, mine.id);
  assert.equal(lines.find((l) => l.type === 'error').error.code, 'invalid_media');
  ws.terminate();
});

test('Range, If-None-Match, HEAD: lighttpd answers them from larkd\'s headers', async () => {
  const body = bytes(100000, 10);
  const m = await uploaded(s, 'rg-alice', body, { name: 'clip.mp4', type: 'video/mp4' });
  const part = await download(s, 'rg-alice', m.id, { Range: 'bytes=1000-1999' });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], `bytes 1000-1999/${body.length}`);
  assert.ok(part.body.equals(body.subarray(1000, 2000)));
  const tail = await download(s, 'rg-alice', m.id, { Range: 'bytes=-10' });
  assert.ok(tail.body.equals(body.subarray(body.length - 10)));
  const same = await download(s, 'rg-alice', m.id, { 'If-None-Match': `"${m.sha256}"` });
  assert.equal(same.status, 304);
  assert.equal(same.body.length, 0);
  const head = await fetchRaw(`${s.url}/v1/media/${m.id}`, { Authorization: `Bearer ${token('rg-alice')}` }, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(body.length));
  assert.equal(head.headers['content-type'], 'video/mp4');
  assert.equal(head.body.length, 0);
  assert.equal((await fetchRaw(`${s.url}/v1/media/${m.id}`, {}, 'HEAD')).status, 401);
});

test('content types: the header is normalized, a bad one refused, SVG and HTML never inline', async () => {
  const svg = await uploaded(s, 't-alice', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    { name: 'x.svg', type: 'Image/SVG+XML' });
  assert.equal(svg.content_type, 'image/svg+xml');
  const r = await download(s, 't-alice', svg.id);
  assert.equal(r.headers['content-type'], 'image/svg+xml');
  assert.match(r.headers['content-disposition'], /^attachment;/);
  const html = await uploaded(s, 't-alice', Buffer.from('<html>hi</html>'), { name: 'x.html', type: 'text/html; charset=utf-8' });
  assert.match((await download(s, 't-alice', html.id)).headers['content-disposition'], /^attachment;/);
  const png = await uploaded(s, 't-alice', PNG, { name: 'dot.png', type: 'image/png' });
  assert.match((await download(s, 't-alice', png.id)).headers['content-disposition'], /^inline;/);
  // defaults: a name, and octet-stream
  const plain = await uploaded(s, 't-alice', Buffer.from('x'), { type: '' });
  assert.equal(plain.name, 'file');
  assert.equal(plain.content_type, 'application/octet-stream');
  for (const [q, type] of [['a%2Fb', 'text/plain'], ['%E2%80%AEgpj.exe', 'text/plain'], ['ok.txt', 'text plain'], ['', 'text/plain']]) {
    const bad = await request(s.url, 'POST', `/v1/media?name=${q}`, { tok: token('t-alice'), body: Buffer.from('x'), headers: { 'Content-Type': type } });
    assert.equal(bad.status, 400, `${q} ${type}`);
    assert.equal(bad.json.error.code, 'invalid_request');
  }
});

test('413 beyond media_max_bytes, answered before the body is sent; larkd holds none of a 24 MiB upload', async () => {
  // headers only: lighttpd hands the request to larkd at once, and larkd
  // refuses it from its Content-Length
  const answer = await new Promise((resolve, reject) => {
    const c = net.connect(s.port, '127.0.0.1', () => {
      c.write(`POST /v1/media?name=big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('b-alice')}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${25 * MiB + 1}\r\n\r\n`);
    });
    let got = '';
    c.on('data', (d) => { got += d; if (got.includes('\r\n\r\n') && got.includes('}')) { c.destroy(); resolve(got); } });
    c.on('error', reject);
    setTimeout(() => { c.destroy(); reject(new Error(`no answer before the body; got ${JSON.stringify(got)}`)); }, 5000);
  });
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /"code":"media_too_large"/);
  // declared too large: the same code
  const d = await new Api(s.url, 'b-alice').post('/v1/media/uploads', { size: 25 * MiB + 1, sha256: sha256('') });
  assert.equal(d.status, 413);
  assert.equal(d.json.error.code, 'media_too_large');

  // a 24 MiB upload streams through: larkd's memory grows by far less
  const body = bytes(24 * MiB, 11);
  const pid = s.larkd.pid;
  const before = vmRssKiB(pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, vmRssKiB(pid)); }, 5);
  const m = await uploaded(s, 'b-alice', body, { name: 'big.bin' });
  clearInterval(sampler);
  peak = Math.max(peak, vmRssKiB(pid));
  assert.equal(m.sha256, sha256(body));
  assert.ok(peak - before < 8 * 1024, `larkd grew ${peak - before} KiB during a 24 MiB upload`);
  const back = await download(s, 'b-alice', m.id);
  assert.ok(back.body.equals(body));
  const met = await metrics(s.url);
  assert.ok(met.lark_media_uploads_total >= 1);
});

test('per-user upload rate and quota, with clear errors', async () => {
  const lim = await new Stack({ LARK_MEDIA_RATE: '1', LARK_MEDIA_BURST: '2', LARK_MEDIA_QUOTA_MB: '1' }).start();
  try {
    const half = bytes(600 * 1024, 12);
    await uploaded(lim, 'q-alice', half);
    const over = await upload(lim, 'q-alice', half);
    assert.equal(over.status, 413);
    assert.equal(over.json.error.code, 'quota_exceeded');
    assert.match(over.json.error.message, /1 MiB/);
    // refused before its body was read: the connection is not kept (a
    // client would otherwise send its next request into it)
    assert.equal(over.headers.connection, 'close');
    const declared = await new Api(lim.url, 'q-alice').post('/v1/media/uploads', { size: half.length, sha256: sha256(half) });
    assert.equal(declared.json.error.code, 'rate_limited', 'the third upload (a burst of 2)');
    assert.ok(Number(declared.headers['retry-after']) >= 1);
    // others are not affected
    await uploaded(lim, 'q-bob', half);
  } finally {
    await lim.stop();
  }
});

test('kill -9 in the middle of an upload leaves no half file under a real name', async () => {
  const k = await new Stack().start();
  try {
    const body = bytes(4 * MiB, 13);
    const c = net.connect(k.port, '127.0.0.1');
    await new Promise((resolve) => c.once('connect', resolve));
    c.on('error', () => {});
    c.write(`POST /v1/media?name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('k-alice')}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.write(body.subarray(0, 2 * MiB));
    const spool = path.join(k.dir, 'media', 'tmp');
    const spoolFile = await waitFor(() => {
      const f = fs.readdirSync(spool).find((n) => n.startsWith('up-'));
      return f && fs.statSync(path.join(spool, f)).size > 0 ? path.join(spool, f) : null;
    }, 'the upload to reach the spool');
    k.larkd.kill('SIGKILL');
    await waitFor(() => k.larkd.exitCode !== null || k.larkd.signalCode !== null, 'larkd dead');
    c.destroy();
    // nothing under a real name: only the spool file
    const real = fs.readdirSync(path.join(k.dir, 'media')).filter((n) => n !== 'tmp');
    assert.deepEqual(real, []);
    assert.ok(fs.existsSync(spoolFile));
    // once idle past LIMIT_MEDIA_SPOOL_IDLE_S (here: made to look two hours
    // old), the sweep at the next start removes it
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    fs.utimesSync(spoolFile, old, old);
    await k.restartLarkd();
    await waitFor(() => !fs.existsSync(spoolFile), 'the sweep to remove the dead upload');
    // and uploads work again
    const again = await uploaded(k, 'k-alice', body);
    assert.equal(again.sha256, sha256(body));
  } finally {
    await k.stop();
  }
});

test('retention: what no message names is deleted, bytes another item shares are kept', async () => {
  const r = await new Stack({ LARK_MEDIA_RETENTION: '2', LARK_MEDIA_UPLOAD_TTL: '1' }).start();
  try {
    const shared = bytes(3000, 14);
    const lonely = await uploaded(r, 're-alice', bytes(2000, 15), { name: 'lonely.bin' });
    const twinA = await uploaded(r, 're-alice', shared, { name: 'a.bin' }); // never sent
    const twinB = await uploaded(r, 're-bob', shared, { name: 'b.bin' });   // sent
    const declared = await new Api(r.url, 're-alice').post('/v1/media/uploads', { size: 5, sha256: sha256('hello') });
    assert.equal((await new Api(r.url, 're-bob').send('re-alice', 'kept', { media: [twinB.id] })).status, 201);
    await sleep(1500);
    // the upload URL expired after a second
    const late = await putTo(declared.json.upload.url, {}, Buffer.from('hello'));
    assert.equal(late.status, 403);
    assert.match(JSON.parse(late.body).error.message, /expired/);
    const file = (m) => path.join(r.dir, 'media', m.sha256.slice(0, 2), m.sha256);
    await waitFor(async () => (await download(r, 're-alice', lonely.id)).status === 404, 'the unsent upload to expire', 15000);
    await waitFor(async () => (await download(r, 're-alice', twinA.id)).status === 404, 'its twin to expire', 15000);
    assert.ok(!fs.existsSync(file(lonely)), 'its file is gone');
    assert.ok(fs.existsSync(file(twinB)), 'the shared file stays: a sent item names it');
    const kept = await download(r, 're-alice', twinB.id);
    assert.equal(kept.status, 200);
    assert.ok(kept.body.equals(shared));
    // an expired id is refused like an unknown one
    const sent = await new Api(r.url, 're-alice').send('re-bob', 'late', { media: [lonely.id] });
    assert.equal(sent.json.error.code, 'invalid_media');
    // the lonely one, its twin and the declared one that never came
    await waitFor(async () => (await metrics(r.url)).lark_media_expired_total >= 3, 'three expired', 15000);
  } finally {
    await r.stop();
  }
});

// ---- S3 ---------------------------------------------------------------------------

test('S3, one step: larkd PUTs the bytes (signed, checksummed); the recipient is redirected to a presigned GET', async () => {
  const body = bytes(150 * 1024, 20);
  const m = await uploaded(ss, 's-alice', body, { name: 'pic.png', type: 'image/png' });
  const o = s3.object(m.id);
  assert.ok(o && o.body.equals(body), 'the object holds the bytes, keyed by the media id');
  assert.equal(o.type, 'image/png');
  assert.equal(o.checksum, crypto.createHash('sha256').update(body).digest('base64'));
  // larkd leaves nothing in its spool
  assert.deepEqual(fs.readdirSync(path.join(ss.dir, 'media', 'tmp')), []);
  assert.equal((await new Api(ss.url, 's-alice').send('s-bob', '', { media: [m.id] })).status, 201);
  const r = await download(ss, 's-bob', m.id);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(body));
  assert.match(r.redirect, new RegExp(`^${s3.url}/${s3.bucket}/${m.id}\\?X-Amz-Algorithm=AWS4-HMAC-SHA256&`));
  assert.equal(r.headers['content-type'], 'image/png');
  assert.equal(r.headers['content-disposition'], "inline; filename=\"pic.png\"; filename*=UTF-8''pic.png");
  const part = await download(ss, 's-bob', m.id, { Range: 'bytes=0-99' });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(body.subarray(0, 100)));
  // the redirect itself: not cached, and only for who may read
  const redirect = await fetchRaw(`${ss.url}/v1/media/${m.id}`, { Authorization: `Bearer ${token('s-bob')}` });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers['cache-control'], 'no-store');
  assert.equal((await download(ss, 's-stranger', m.id)).status, 404);
  // a presigned URL whose signed response type is changed is refused by S3
  const tampered = await fetchRaw(redirect.headers.location.replace('response-content-type=image%2Fpng', 'response-content-type=text%2Fhtml'));
  assert.equal(tampered.status, 403);
});

test('S3, two steps: the client PUTs to the presigned URL; the send confirms it; wrong bytes never become ready', async () => {
  const body = bytes(70 * 1024, 21);
  const { decl, put } = await twoStep(ss, 's-alice', body, { type: 'application/zip', name: 'a.zip' });
  assert.equal(put.status, 200, put.body);
  assert.ok(decl.upload.url.startsWith(`${s3.url}/${s3.bucket}/${decl.media.id}?`));
  assert.deepEqual(Object.keys(decl.upload.headers).sort(), ['Content-Length', 'Content-Type', 'x-amz-checksum-sha256']);
  const sent = await new Api(ss.url, 's-alice').send('s-bob', 'zip', { media: [decl.media.id] });
  assert.equal(sent.status, 201, sent.body);
  const r = await download(ss, 's-bob', decl.media.id);
  assert.ok(r.body.equals(body));
  assert.match(r.headers['content-disposition'], /^attachment;/);

  // other bytes of the same length: S3 refuses them (the checksum is signed)
  const other = await twoStep(ss, 's-alice', body, { putBody: bytes(body.length, 22) });
  assert.equal(other.put.status, 400);
  assert.match(other.put.body, /BadDigest/);
  // a different type than the one signed: refused too
  const wrongType = await putTo(other.decl.upload.url, { ...other.decl.upload.headers, 'Content-Type': 'text/html' }, body);
  assert.equal(wrongType.status, 403);
  assert.match(wrongType.body, /SignatureDoesNotMatch/);
  const pending = await new Api(ss.url, 's-alice').send('s-bob', 'x', { media: [other.decl.media.id] });
  assert.equal(pending.status, 409);
  assert.equal(pending.json.error.code, 'media_pending');
  // every request larkd itself made passed S3's signature check
  const own = s3.requests.filter((q) => q.auth === 'header');
  assert.ok(own.length >= 3, 'larkd made signed requests (PUT, HEAD)');
  assert.deepEqual(own.filter((q) => q.status >= 400 && q.status !== 404), []);
});

test('S3 retention: an unsent upload\'s object is deleted', async () => {
  const r = await new Stack({ ...s3.env(), LARK_MEDIA_RETENTION: '1' }).start();
  try {
    const m = await uploaded(r, 'sr-alice', bytes(100, 23));
    assert.ok(s3.object(m.id));
    await waitFor(() => !s3.object(m.id), 'the object to be deleted', 15000);
    assert.equal((await download(r, 'sr-alice', m.id)).status, 404);
  } finally {
    await r.stop();
  }
});

test('stop', async () => {
  await s.stop();
  await ss.stop();
  await s3.stop();
});
