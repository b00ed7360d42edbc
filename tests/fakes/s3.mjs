// s3.mjs - a fake S3 (path-style, one region, one set of credentials) that
// checks every request's AWS Signature Version 4 the way S3 does, for the
// media tests (tests/integration/test_media.mjs).
//
// Why a fake: Debian 12 packages no S3-compatible server light enough to
// start per test (python3-moto is not packaged; radosgw needs a Ceph
// cluster), and the npm one, s3rver 3.7, parses SigV4 but never checks the
// signature ("Signature version 4 calculation is unimplemented"). A server
// that accepts any signature would prove nothing about lark's signing.
//
// What is checked, as AWS documents it ("Authenticating Requests (AWS
// Signature Version 4)"), with the canonical request built here from the
// request as received - independently of lark's core/sigv4.c:
//   - the header form (Authorization: AWS4-HMAC-SHA256 Credential=...,
//     SignedHeaders=..., Signature=...): x-amz-date within 15 minutes,
//     x-amz-content-sha256 present and, when it is a hash, equal to the
//     body's (XAmzContentSHA256Mismatch);
//   - the query form (presigned URLs: X-Amz-Algorithm, -Credential, -Date,
//     -Expires <= 7 days, -SignedHeaders, -Signature): not expired,
//     payload UNSIGNED-PAYLOAD;
//   - both: the credential's access key, date (that of X-Amz-Date), region
//     and service; "host" signed; every x-amz-* header signed
//     ("There were headers present in the request which were not signed");
//     the signature over the canonical request (URI-encoded path, sorted
//     and encoded query, canonical headers) with the signing key derived
//     from the secret. A mismatch is 403 SignatureDoesNotMatch.
//   - PUT: x-amz-checksum-sha256, when sent, must be the body's (400
//     BadDigest); it is kept and returned by HEAD/GET with
//     x-amz-checksum-mode: ENABLED.
// GET supports Range and, on signed requests only, response-content-type
// and response-content-disposition. OPTIONS answers CORS preflights as a
// bucket with a permissive CORS rule would.
//
// canonicalRequest() and signature() are exported for tests/js, which
// checks them against AWS's published examples.

import crypto from 'node:crypto';
import http from 'node:http';

const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_EXPIRES_S = 7 * 24 * 3600;

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it: unreserved kept, '/' kept in paths. */
export function uriEncode(s, keepSlash) {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Split a raw query string into decoded [name, value] pairs. */
function parseQuery(raw) {
  if (!raw) return [];
  return raw.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    const dec = (x) => decodeURIComponent(x.replace(/\+/g, '%20'));
    return i < 0 ? [dec(p), ''] : [dec(p.slice(0, i)), dec(p.slice(i + 1))];
  });
}

/**
 * The canonical request: method, the path (raw, decoded, then encoded
 * once - S3 neither double-encodes nor normalizes), the query pairs
 * (decoded) sorted by encoded name then value, the signed headers
 * (lowercase names, values trimmed, inner blanks folded) and the payload
 * hash.
 */
export function canonicalRequest({ method, path, query, headers, signedHeaders, payloadHash }) {
  const canonPath = uriEncode(decodeURIComponent(path), true);
  const q = query.map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  const canonHeaders = signedHeaders.map((h) => {
    const v = headers[h];
    const value = (Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/[ \t]+/g, ' ');
    return `${h}:${value}\n`;
  }).join('');
  return [method, canonPath, q, canonHeaders, signedHeaders.join(';'), payloadHash].join('\n');
}

/** The signature of a canonical request (hex). */
export function signature({ secret, date, region, service, canonical }) {
  const day = date.slice(0, 8);
  const sts = ['AWS4-HMAC-SHA256', date, `${day}/${region}/${service}/aws4_request`, sha256hex(canonical)].join('\n');
  let key = hmac('AWS4' + secret, day);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, 'aws4_request');
  return crypto.createHmac('sha256', key).update(sts).digest('hex');
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

class S3Error extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function xmlError(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

export class FakeS3 {
  /** opts: { accessKey, secretKey, region, bucket } */
  constructor({ accessKey = 'LARKTESTACCESSKEY', secretKey = 'lark/test+secret/key', region = 'eu-test-1', bucket = 'lark-media' } = {}) {
    this.accessKey = accessKey;
    this.secretKey = secretKey;
    this.region = region;
    this.bucket = bucket;
    this.objects = new Map(); // "bucket/key" -> {body, type, checksum, etag, modified}
    this.requests = []; // {method, path, auth, status, code}
  }

  async start() {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.sockets = new Set();
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** larkd's settings for this server. */
  env() {
    return {
      LARK_MEDIA_STORAGE: 's3', LARK_MEDIA_S3_ENDPOINT: this.url, LARK_MEDIA_S3_BUCKET: this.bucket,
      LARK_MEDIA_S3_REGION: this.region, LARK_MEDIA_S3_ACCESS_KEY: this.accessKey,
      LARK_MEDIA_S3_SECRET_KEY: this.secretKey, LARK_MEDIA_S3_TIMEOUT: '20',
    };
  }

  object(key) { return this.objects.get(`${this.bucket}/${key}`); }

  refused() { return this.requests.filter((r) => r.status >= 400); }

  onRequest(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let auth = null;
      try {
        if (req.method === 'OPTIONS') return this.preflight(req, res);
        auth = this.authenticate(req, body);
        this.handle(req, res, body, auth);
      } catch (e) {
        if (!(e instanceof S3Error)) throw e;
        this.requests.push({ method: req.method, path: req.url.split('?')[0], auth, status: e.status, code: e.code, message: e.message });
        this.cors(req, res);
        res.writeHead(e.status, { 'Content-Type': 'application/xml' });
        res.end(req.method === 'HEAD' ? undefined : xmlError(e.code, e.message));
      }
    });
  }

  cors(req, res) {
    if (req.headers.origin) {
      res.setHeader('Access-Control-Allow-Origin', req.headers.origin);
      res.setHeader('Access-Control-Expose-Headers', 'ETag, x-amz-checksum-sha256');
    }
  }

  preflight(req, res) {
    this.cors(req, res);
    res.writeHead(200, {
      'Access-Control-Allow-Methods': 'GET, PUT, HEAD',
      'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || '',
      'Access-Control-Max-Age': '600',
    });
    res.end();
  }

  /** Check the request's signature; 'header' or 'query', or throws. */
  authenticate(req, body) {
    const [path, rawQuery = ''] = req.url.split(/\?(.*)/s);
    const query = parseQuery(rawQuery);
    const q = Object.fromEntries(query);
    const authz = req.headers.authorization;
    let form, credential, signedHeaders, given, date, payloadHash;
    if (authz && q['X-Amz-Algorithm']) throw new S3Error(400, 'InvalidArgument', 'Only one auth mechanism allowed');
    if (authz) {
      form = 'header';
      const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(authz);
      if (!m) throw new S3Error(400, 'InvalidArgument', 'Unsupported Authorization Type');
      const parts = Object.fromEntries(m[1].split(',').map((p) => p.trim().split(/=(.*)/s).slice(0, 2)));
      if (!parts.Credential || !parts.SignedHeaders || !parts.Signature)
        throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed');
      credential = parts.Credential;
      signedHeaders = parts.SignedHeaders.split(';');
      given = parts.Signature;
      date = req.headers['x-amz-date'];
      payloadHash = req.headers['x-amz-content-sha256'];
      if (!payloadHash) throw new S3Error(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
      const when = parseAmzDate(date);
      if (Number.isNaN(when)) throw new S3Error(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
      if (Math.abs(Date.now() - when) > MAX_SKEW_MS)
        throw new S3Error(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
      if (/^[0-9a-f]{64}$/i.test(payloadHash) && payloadHash.toLowerCase() !== sha256hex(body))
        throw new S3Error(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
      if (!/^([0-9a-f]{64}|UNSIGNED-PAYLOAD)$/i.test(payloadHash))
        throw new S3Error(400, 'InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.');
    } else if (q['X-Amz-Algorithm']) {
      form = 'query';
      if (q['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256')
        throw new S3Error(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
      for (const k of ['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'])
        if (!(k in q)) throw new S3Error(400, 'AuthorizationQueryParametersError', `Query-string authentication version 4 requires ${k}`);
      credential = q['X-Amz-Credential'];
      signedHeaders = q['X-Amz-SignedHeaders'].split(';');
      given = q['X-Amz-Signature'];
      date = q['X-Amz-Date'];
      payloadHash = 'UNSIGNED-PAYLOAD';
      const when = parseAmzDate(date);
      const expires = Number(q['X-Amz-Expires']);
      if (Number.isNaN(when)) throw new S3Error(400, 'AuthorizationQueryParametersError', 'X-Amz-Date must be in the ISO8601 Long Format');
      if (!Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_S)
        throw new S3Error(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be between 1 and 604800 seconds');
      if (Date.now() > when + expires * 1000) throw new S3Error(403, 'AccessDenied', 'Request has expired');
      if (when - Date.now() > MAX_SKEW_MS) throw new S3Error(403, 'AccessDenied', 'Request is not valid yet');
    } else {
      throw new S3Error(403, 'AccessDenied', 'Access Denied'); // a private bucket
    }
    const [key, day, region, service, term] = credential.split('/');
    if (key !== this.accessKey) throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    if (day !== date.slice(0, 8) || service !== 's3' || term !== 'aws4_request')
      throw new S3Error(400, 'AuthorizationHeaderMalformed', `The credential ${credential} is malformed`);
    if (region !== this.region)
      throw new S3Error(400, 'AuthorizationHeaderMalformed', `the region '${region}' is wrong; expecting '${this.region}'`);
    if (!signedHeaders.includes('host')) throw new S3Error(403, 'AccessDenied', 'host must be a signed header');
    const sorted = [...signedHeaders].sort();
    if (sorted.join(';') !== signedHeaders.join(';')) throw new S3Error(403, 'SignatureDoesNotMatch', 'SignedHeaders are not sorted');
    const unsigned = Object.keys(req.headers).filter((h) => h.startsWith('x-amz-') && !signedHeaders.includes(h));
    if (unsigned.length) throw new S3Error(403, 'AccessDenied', `There were headers present in the request which were not signed: ${unsigned.join(', ')}`);
    for (const h of signedHeaders)
      if (!(h in req.headers)) throw new S3Error(403, 'SignatureDoesNotMatch', `signed header ${h} is missing`);
    const canonQuery = form === 'query' ? query.filter(([k]) => k !== 'X-Amz-Signature') : query;
    const canonical = canonicalRequest({ method: req.method, path, query: canonQuery, headers: req.headers, signedHeaders, payloadHash });
    const want = signature({ secret: this.secretKey, date, region, service, canonical });
    if (given.length !== want.length || !crypto.timingSafeEqual(Buffer.from(want), Buffer.from(given)))
      throw new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    return form;
  }

  handle(req, res, body, auth) {
    const [rawPath, rawQuery = ''] = req.url.split(/\?(.*)/s);
    const q = Object.fromEntries(parseQuery(rawQuery));
    const path = decodeURIComponent(rawPath);
    const m = /^\/([^/]+)\/(.+)$/.exec(path);
    if (!m) throw new S3Error(400, 'InvalidRequest', 'path-style object requests only');
    const [, bucket, key] = m;
    if (bucket !== this.bucket) throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist');
    const id = `${bucket}/${key}`;
    const done = (status, headers = {}, data) => {
      this.requests.push({ method: req.method, path: rawPath, auth, status });
      this.cors(req, res);
      res.writeHead(status, headers);
      res.end(data);
    };
    if (req.method === 'PUT') {
      const checksum = crypto.createHash('sha256').update(body).digest('base64');
      const sent = req.headers['x-amz-checksum-sha256'];
      if (sent !== undefined && sent !== checksum)
        throw new S3Error(400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.');
      const etag = `"${crypto.createHash('md5').update(body).digest('hex')}"`;
      this.objects.set(id, { body, type: req.headers['content-type'] || 'binary/octet-stream', checksum: sent, etag, modified: new Date() });
      return done(200, { ETag: etag, ...(sent ? { 'x-amz-checksum-sha256': sent } : {}) });
    }
    if (req.method === 'DELETE') {
      this.objects.delete(id);
      return done(204);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new S3Error(405, 'MethodNotAllowed', 'The specified method is not allowed');
    const o = this.objects.get(id);
    if (!o) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
    const headers = {
      'Content-Type': q['response-content-type'] || o.type, ETag: o.etag, 'Last-Modified': o.modified.toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    if (q['response-content-disposition']) headers['Content-Disposition'] = q['response-content-disposition'];
    if (o.checksum && req.headers['x-amz-checksum-mode'] === 'ENABLED') headers['x-amz-checksum-sha256'] = o.checksum;
    let data = o.body;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (range && req.method === 'GET' && (range[1] || range[2])) {
      const size = o.body.length;
      const start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
      const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size || start > end) throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable');
      data = o.body.subarray(start, end + 1);
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      status = 206;
    }
    headers['Content-Length'] = String(data.length);
    return done(status, headers, req.method === 'HEAD' ? undefined : data);
  }
}
