// apns.mjs - a fake APNs provider API: HTTP/2 over TLS, token auth.
//
// Speaks what api.push.apple.com speaks to a provider: POST
// /3/device/<token> with `authorization: bearer <ES256 JWT>` and the apns-*
// headers, answers 200 with an apns-id, or an error status with
// {"reason": "..."}. Every request's provider token is verified with the
// .p8 key's public half: alg ES256, kid = the key id, iss = the team id,
// iat within the last hour (else 403 InvalidProviderToken /
// ExpiredProviderToken). Missing or wrong apns-* headers get 400 like
// Apple's (MissingTopic, BadPriority, ...).
//
// Tests program answers per device token (`script(token, [...])`: each
// request takes the next entry, the last one repeats) and read what was
// delivered (`delivered`, `requests`). `sessions` counts TLS connections,
// so a test can see that requests were multiplexed over one.

import crypto from 'node:crypto';
import http2 from 'node:http2';
import { verifyJwt } from './pki.mjs';

export class FakeApns {
  /** opts: { tls: {key, cert}, publicKey, keyId, teamId, topic, delayMs } */
  constructor(opts) {
    this.opts = opts;
    this.requests = [];   // every request: { token, headers, payload, status, at }
    this.delivered = [];  // the 200s
    this.scripts = new Map();
    this.sessions = 0;
    this.delayMs = opts.delayMs || 0;
    this.jwtsSeen = new Set();
  }

  /** Answers for token, in order; entries { status, reason, retryAfter, delayMs }. */
  script(token, answers) { this.scripts.set(token, [...answers]); }

  async start() {
    this.server = http2.createSecureServer({ ...this.opts.tls, settings: { maxConcurrentStreams: 1000 } });
    this.sockets = new Set();
    this.server.on('session', () => { this.sessions++; });
    this.server.on('secureConnection', (sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `https://127.0.0.1:${this.port}`;
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

  checkAuth(h) {
    const auth = h.authorization || '';
    if (!auth.startsWith('bearer ')) return 'MissingProviderToken';
    let jwt;
    try {
      jwt = verifyJwt(auth.slice(7), this.opts.publicKey, 'ES256');
    } catch {
      return 'InvalidProviderToken';
    }
    const now = Math.floor(Date.now() / 1000);
    if (jwt.header.kid !== this.opts.keyId || jwt.claims.iss !== this.opts.teamId) return 'InvalidProviderToken';
    if (typeof jwt.claims.iat !== 'number' || jwt.claims.iat > now + 60) return 'InvalidProviderToken';
    if (jwt.claims.iat < now - 3600) return 'ExpiredProviderToken';
    this.jwtsSeen.add(auth.slice(7));
    return null;
  }

  checkHeaders(h) {
    if (!h['apns-topic']) return 'MissingTopic';
    if (this.opts.topic && h['apns-topic'] !== this.opts.topic) return 'TopicDisallowed';
    if (!['alert', 'background'].includes(h['apns-push-type'])) return 'InvalidPushType';
    if (!['5', '10'].includes(h['apns-priority'])) return 'BadPriority';
    if (!h['apns-collapse-id'] || Buffer.byteLength(h['apns-collapse-id']) > 64) return 'BadCollapseId';
    if (!/^\d+$/.test(h['apns-expiration'] || '')) return 'BadExpirationDate';
    return null;
  }

  onStream(stream, h) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const m = /^\/3\/device\/([0-9a-f]+)$/.exec(h[':path'] || '');
      const token = m ? m[1] : null;
      let payload;
      try { payload = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { payload = null; }
      const script = token && this.scripts.get(token);
      let answer = { status: 200 };
      if (script && script.length) answer = script.length > 1 ? script.shift() : script[0];
      let reason = null;
      let status = answer.status;
      if (h[':method'] !== 'POST') { status = 405; reason = 'MethodNotAllowed'; }
      else if (!token) { status = 404; reason = 'BadPath'; }
      else if ((reason = this.checkAuth(h))) status = 403;
      else if ((reason = this.checkHeaders(h))) status = 400;
      else if (!payload || !payload.aps || !payload.aps.alert) { status = 400; reason = 'PayloadEmpty'; }
      else if (status !== 200) reason = answer.reason || (status === 410 ? 'Unregistered' : 'ServiceUnavailable');
      const rec = { token, headers: h, payload, status, reason, at: Date.now() };
      this.requests.push(rec);
      const reply = () => {
        if (stream.destroyed) return;
        if (status === 200) {
          this.delivered.push(rec);
          stream.respond({ ':status': 200, 'apns-id': crypto.randomUUID() });
          stream.end();
        } else {
          const hdr = { ':status': status, 'content-type': 'application/json', 'apns-id': crypto.randomUUID() };
          if (answer.retryAfter !== undefined) hdr['retry-after'] = String(answer.retryAfter);
          stream.respond(hdr);
          stream.end(JSON.stringify(status === 410 ? { reason, timestamp: Date.now() } : { reason }));
        }
      };
      const delay = answer.delayMs ?? this.delayMs;
      if (delay) setTimeout(reply, delay); else reply();
    });
    stream.on('error', () => {});
  }

  /** Delivered notifications for token. */
  for(token) { return this.delivered.filter((d) => d.token === token); }
}
