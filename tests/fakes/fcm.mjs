// fcm.mjs - a fake FCM: the OAuth2 token endpoint and the HTTP v1 send
// endpoint, on one HTTP/2 (or HTTP/1.1) TLS server.
//
// Token endpoint (POST /token, application/x-www-form-urlencoded):
// grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer and the
// assertion an RS256 JWT verified with the service account's public key,
// with iss = client_email, scope containing firebase.messaging, aud = this
// token URL, iat/exp sane (exp - iat <= 3600). Answers {access_token,
// expires_in, token_type}; otherwise 400 {"error": "invalid_grant"}.
//
// Send endpoint (POST /v1/projects/<project>/messages:send): needs
// `Authorization: Bearer <an issued token>` (else 401 UNAUTHENTICATED), a
// {"message": {"token", ...}} body; answers {"name": ...} or the scripted
// google.rpc error (404 UNREGISTERED, 400 INVALID_ARGUMENT on
// message.token, 503 UNAVAILABLE, ...), as FCM does.

import crypto from 'node:crypto';
import http2 from 'node:http2';
import { verifyJwt } from './pki.mjs';

const errorBodies = {
  UNREGISTERED: (status) => ({ error: { code: status, message: 'Requested entity was not found.', status: 'NOT_FOUND',
    details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }] } }),
  INVALID_TOKEN: (status) => ({ error: { code: status, message: 'The registration token is not a valid FCM registration token',
    status: 'INVALID_ARGUMENT', details: [
      { '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'INVALID_ARGUMENT' },
      { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'message.token', description: 'Invalid registration token' }] }] } }),
  UNAVAILABLE: (status) => ({ error: { code: status, message: 'The service is currently unavailable.', status: 'UNAVAILABLE',
    details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNAVAILABLE' }] } }),
};

export class FakeFcm {
  /** opts: { tls, publicKey, account (the service-account object), tokenTtl, delayMs } */
  constructor(opts) {
    this.opts = opts;
    this.issued = new Set();
    this.tokenRequests = 0;
    this.requests = [];
    this.delivered = [];
    this.scripts = new Map();
    this.sessions = 0;
  }

  script(token, answers) { this.scripts.set(token, [...answers]); }

  async start() {
    this.server = http2.createSecureServer({ ...this.opts.tls, allowHTTP1: true, settings: { maxConcurrentStreams: 1000 } });
    this.sockets = new Set();
    this.server.on('session', () => { this.sessions++; });
    this.server.on('secureConnection', (sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `https://127.0.0.1:${this.port}`;
    this.tokenUrl = `${this.url}/token`;
    return this;
  }

  stop() {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      // close() waits for connections; lark-push keeps its own open
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  json(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  }

  onToken(res, body) {
    this.tokenRequests++;
    const form = new URLSearchParams(body);
    try {
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') throw new Error('grant_type');
      const { claims } = verifyJwt(form.get('assertion'), this.opts.publicKey, 'RS256');
      const now = Math.floor(Date.now() / 1000);
      if (claims.iss !== this.opts.account.client_email) throw new Error('iss');
      if (!String(claims.scope || '').split(' ').includes('https://www.googleapis.com/auth/firebase.messaging')) throw new Error('scope');
      if (claims.aud !== this.tokenUrl) throw new Error(`aud ${claims.aud}`);
      if (!(claims.iat <= now + 60 && claims.exp > now && claims.exp - claims.iat <= 3600)) throw new Error('iat/exp');
    } catch (e) {
      this.lastTokenError = e.message;
      return this.json(res, 400, { error: 'invalid_grant', error_description: e.message });
    }
    const tok = 'ya29.' + crypto.randomBytes(24).toString('base64url');
    this.issued.add(tok);
    return this.json(res, 200, { access_token: tok, expires_in: this.opts.tokenTtl || 3599, token_type: 'Bearer' });
  }

  onSend(req, res, body) {
    const auth = req.headers.authorization || '';
    if (!auth.startsWith('Bearer ') || !this.issued.has(auth.slice(7))) {
      return this.json(res, 401, { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } });
    }
    let payload;
    try { payload = JSON.parse(body); } catch { payload = null; }
    const token = payload && payload.message && payload.message.token;
    if (!token || typeof token !== 'string') {
      return this.json(res, 400, { error: { code: 400, message: 'Invalid JSON payload', status: 'INVALID_ARGUMENT' } });
    }
    const script = this.scripts.get(token);
    let answer = { status: 200 };
    if (script && script.length) answer = script.length > 1 ? script.shift() : script[0];
    const rec = { token, payload, status: answer.status, at: Date.now(), http: req.httpVersion };
    this.requests.push(rec);
    const reply = () => {
      if (answer.status === 200) {
        this.delivered.push(rec);
        return this.json(res, 200, { name: `projects/${this.opts.account.project_id}/messages/${crypto.randomUUID()}` });
      }
      if (answer.retryAfter !== undefined) res.setHeader('retry-after', String(answer.retryAfter));
      const make = errorBodies[answer.error || (answer.status === 404 ? 'UNREGISTERED' : 'UNAVAILABLE')];
      return this.json(res, answer.status, make(answer.status));
    };
    const delay = answer.delayMs ?? this.opts.delayMs ?? 0;
    if (delay) setTimeout(reply, delay); else reply();
  }

  onRequest(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'POST' && req.url === '/token') return this.onToken(res, body);
      const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url);
      if (req.method === 'POST' && m && m[1] === this.opts.account.project_id) return this.onSend(req, res, body);
      return this.json(res, 404, { error: { code: 404, message: 'Not found', status: 'NOT_FOUND' } });
    });
    req.on('error', () => {});
  }

  for(token) { return this.delivered.filter((d) => d.token === token); }
}
