// test_fake_s3.mjs - the fake S3 (tests/fakes/s3.mjs) computes SigV4 as
// AWS does: its canonical requests and signatures give the signatures of
// AWS's published S3 examples ("Signature Calculations for the
// Authorization Header", "Authenticating Requests: Using Query
// Parameters"), so that a request it accepts from larkd is one S3 would
// accept. And it refuses what S3 refuses: a wrong signature, an unsigned
// x-amz-* header, a payload that does not match its hash, an expired URL.
//
//   node --test tests/js/test_*.mjs

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { FakeS3, canonicalRequest, signature } from '../fakes/s3.mjs';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const HOST = 'examplebucket.s3.amazonaws.com';
const DATE = '20130524T000000Z';
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function sig(req) {
  return signature({ secret: SECRET, date: DATE, region: 'us-east-1', service: 's3', canonical: canonicalRequest(req) });
}

test('AWS example: GET Object with a Range', () => {
  const headers = { host: HOST, range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY, 'x-amz-date': DATE };
  assert.equal(sig({ method: 'GET', path: '/test.txt', query: [], headers,
    signedHeaders: ['host', 'range', 'x-amz-content-sha256', 'x-amz-date'], payloadHash: EMPTY }),
  'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
});

test('AWS example: PUT Object, a key with $', () => {
  const payload = crypto.createHash('sha256').update('Welcome to Amazon S3.').digest('hex');
  const headers = { date: 'Fri, 24 May 2013 00:00:00 GMT', host: HOST, 'x-amz-content-sha256': payload,
    'x-amz-date': DATE, 'x-amz-storage-class': 'REDUCED_REDUNDANCY' };
  assert.equal(sig({ method: 'PUT', path: '/test%24file.text', query: [], headers,
    signedHeaders: ['date', 'host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-storage-class'], payloadHash: payload }),
  '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
});

test('AWS examples: GET Bucket lifecycle and list, query parameters', () => {
  const headers = { host: HOST, 'x-amz-content-sha256': EMPTY, 'x-amz-date': DATE };
  const signedHeaders = ['host', 'x-amz-content-sha256', 'x-amz-date'];
  assert.equal(sig({ method: 'GET', path: '/', query: [['lifecycle', '']], headers, signedHeaders, payloadHash: EMPTY }),
    'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
  assert.equal(sig({ method: 'GET', path: '/', query: [['prefix', 'J'], ['max-keys', '2']], headers, signedHeaders, payloadHash: EMPTY }),
    '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
});

test('AWS example: a presigned GET', () => {
  const query = [['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'], ['X-Amz-Credential', 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request'],
    ['X-Amz-Date', DATE], ['X-Amz-Expires', '86400'], ['X-Amz-SignedHeaders', 'host']];
  assert.equal(sig({ method: 'GET', path: '/test.txt', query, headers: { host: HOST }, signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD' }),
    'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
});

// ---- the server refuses what S3 refuses -----------------------------------------

let s3;
before(async () => { s3 = await new FakeS3().start(); });
after(async () => { await s3.stop(); });

const amzDate = (ms = Date.now()) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');

/** A header-signed request to the fake; tamper(headers) may change it after signing. */
function signed(method, key, body = Buffer.alloc(0), { extra = {}, tamper, date = amzDate(), secret = s3.secretKey } = {}) {
  const host = `127.0.0.1:${s3.port}`;
  const path = `/${s3.bucket}/${key}`;
  const headers = { host, 'x-amz-date': date, 'x-amz-content-sha256': crypto.createHash('sha256').update(body).digest('hex'), ...extra };
  const signedHeaders = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const sg = signature({ secret, date, region: s3.region, service: 's3',
    canonical: canonicalRequest({ method, path, query: [], headers: lower, signedHeaders, payloadHash: lower['x-amz-content-sha256'] }) });
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${s3.accessKey}/${date.slice(0, 8)}/${s3.region}/s3/aws4_request, SignedHeaders=${signedHeaders.join(';')}, Signature=${sg}`;
  if (tamper) tamper(headers);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: s3.port, path, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a signed PUT and GET round-trip; checksums are kept', async () => {
  const body = Buffer.from('the bytes');
  const checksum = crypto.createHash('sha256').update(body).digest('base64');
  assert.equal((await signed('PUT', 'k1', body, { extra: { 'x-amz-checksum-sha256': checksum } })).status, 200);
  const h = await signed('HEAD', 'k1', undefined, { extra: { 'x-amz-checksum-mode': 'ENABLED' } });
  assert.equal(h.status, 200);
  assert.equal(h.headers['x-amz-checksum-sha256'], checksum);
  assert.equal((await signed('GET', 'k1')).body, 'the bytes');
});

test('refused: a wrong secret, a changed header, an unsigned x-amz header, a bad payload hash, a bad checksum, an old date', async () => {
  const body = Buffer.from('x');
  let r = await signed('PUT', 'k2', body, { secret: 'wrong' });
  assert.equal(r.status, 403);
  assert.match(r.body, /SignatureDoesNotMatch/);
  r = await signed('PUT', 'k2', body, { extra: { 'Content-Type': 'text/plain' }, tamper: (h) => { h['Content-Type'] = 'text/html'; } });
  assert.match(r.body, /SignatureDoesNotMatch/);
  r = await signed('PUT', 'k2', body, { tamper: (h) => { h['x-amz-meta-x'] = '1'; } });
  assert.match(r.body, /not signed/);
  r = await signed('PUT', 'k2', body, { extra: { 'x-amz-content-sha256': EMPTY } });
  assert.match(r.body, /XAmzContentSHA256Mismatch/);
  r = await signed('PUT', 'k2', body, { extra: { 'x-amz-checksum-sha256': crypto.createHash('sha256').update('y').digest('base64') } });
  assert.match(r.body, /BadDigest/);
  r = await signed('PUT', 'k2', body, { date: amzDate(Date.now() - 3600 * 1000) });
  assert.match(r.body, /RequestTimeTooSkewed/);
  assert.equal(s3.object('k2'), undefined, 'nothing refused was stored');
});
