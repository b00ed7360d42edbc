// client.mjs - HTTP helpers for the tests: JWTs, JSON requests, raw SSE.
//
// Requests go through node:http with no keep-alive pooling surprises: each
// helper returns { status, headers, body, json } and never throws on an
// HTTP error status, so tests assert statuses themselves.

import crypto from 'node:crypto';
import http from 'node:http';
import { secret } from './stack.mjs';

export const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** A JWT. opts: { sub, exp (absolute s), alg, secret, header, claims, sign } */
export function token(sub, opts = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = opts.header || { alg: opts.alg || 'HS256', typ: 'JWT' };
  const claims = opts.claims || { sub, iat: now, exp: opts.exp ?? now + 3600 };
  const head = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims));
  if (opts.sign === false) return head + '.';
  const sig = crypto.createHmac('sha256', opts.secret || secret).update(head).digest();
  return head + '.' + b64url(sig);
}

/**
 * Where an http.request for url goes: straight there, or, with proxy (a
 * forward proxy's 'http://host:port'), to the proxy with the absolute URL
 * as the request target (RFC 9112 absolute-form).
 */
export function target(url, proxy) {
  if (!proxy) return { url, options: {} };
  const p = new URL(proxy);
  return { url: null, options: { host: p.hostname, port: p.port, path: url, headers: { Host: new URL(url).host } } };
}

/**
 * Fail req if its socket has not connected within ms (Node's timeout only
 * counts once connected; a host that vanished leaves a connect waiting for
 * the kernel's own timeout, half a minute and more). 0: no bound.
 */
export function boundConnect(req, ms) {
  if (!ms) return;
  req.on('socket', (sock) => {
    if (!sock.connecting) return;
    const t = setTimeout(() => req.destroy(new Error(`connect timed out after ${ms} ms`)), ms);
    sock.once('connect', () => clearTimeout(t));
    req.once('close', () => clearTimeout(t));
  });
}

/**
 * One HTTP request. body: object (sent as JSON), string or Buffer; signal: an
 * AbortSignal; proxy: a forward proxy to send it through (target());
 * timeout: ms the connected socket may stay silent; connectTimeout: ms to
 * connect (boundConnect).
 */
export function request(base, method, path, { tok, body, headers = {}, timeout = 30000, agent: ag = agent, signal, proxy, connectTimeout = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    let data = null;
    if (tok) h.Authorization = `Bearer ${tok}`;
    if (body !== undefined) {
      data = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      if (!('Content-Type' in h) && !('content-type' in h)) h['Content-Type'] = 'application/json';
      h['Content-Length'] = data.length;
    }
    const t = target(base + path, proxy);
    const opts = { ...t.options, method, headers: { ...t.options.headers, ...h }, agent: ag, signal };
    const req = (t.url ? http.request(t.url, opts, onResponse) : http.request(opts, onResponse));
    function onResponse(res) {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
      res.on('error', reject);
    }
    req.setTimeout(timeout, () => req.destroy(new Error(`${method} ${path} timed out`)));
    boundConnect(req, connectTimeout);
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

export class Api {
  constructor(base, user) {
    this.base = base;
    this.user = user;
    this.tok = token(user);
  }
  get(path, opts = {}) { return request(this.base, 'GET', path, { tok: this.tok, ...opts }); }
  post(path, body, opts = {}) { return request(this.base, 'POST', path, { tok: this.tok, body, ...opts }); }
  send(to, body, extra = {}) {
    return this.post('/v1/messages', { to, body, client_msg_id: crypto.randomUUID(), ...extra });
  }
  poll(query = '') { return this.get(`/v1/poll${query}`, { timeout: 90000 }); }
}

/**
 * A raw SSE stream: parses the wire format itself so tests can check ids,
 * event names and comments exactly. events: [{id, event, data, json}],
 * without the stream's own hello and ping events (API.md), which go to
 * hellos and pings; comments: [text]; retry: last retry value.
 */
export class RawSSE {
  /** proxy: a forward proxy to go through (target()). */
  constructor(base, path, { tok, headers = {}, proxy } = {}) {
    this.events = [];
    this.hellos = [];
    this.pings = [];
    this.comments = [];
    this.retry = null;
    this.raw = '';
    this.closed = false;
    this.waiters = [];
    const h = { Accept: 'text/event-stream', ...headers };
    if (tok) h.Authorization = `Bearer ${tok}`;
    this.ready = new Promise((resolve, reject) => {
      const t = target(base + path, proxy);
      const opts = { ...t.options, headers: { ...t.options.headers, ...h }, agent: false };
      const onResponse = (res) => {
        this.status = res.statusCode;
        this.headers = res.headers;
        res.setEncoding('utf8');
        let pending = '';
        res.on('data', (chunk) => {
          this.raw += chunk;
          pending += chunk;
          let i;
          while ((i = pending.indexOf('\n\n')) >= 0) {
            this.parseBlock(pending.slice(0, i));
            pending = pending.slice(i + 2);
          }
          this.notify();
        });
        res.on('end', () => { this.closed = true; this.notify(); });
        res.on('error', () => { this.closed = true; this.notify(); });
        resolve(this);
      };
      this.req = t.url ? http.get(t.url, opts, onResponse) : http.get(opts, onResponse);
      this.req.on('error', (e) => { this.closed = true; this.notify(); reject(e); });
    });
  }

  parseBlock(block) {
    const ev = { id: null, event: 'message', data: '' };
    let isEvent = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) { this.comments.push(line.slice(1).trim()); continue; }
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'retry') this.retry = Number(value);
      else if (field === 'id') { ev.id = value; isEvent = true; }
      else if (field === 'event') { ev.event = value; isEvent = true; }
      else if (field === 'data') { ev.data += (ev.data ? '\n' : '') + value; isEvent = true; }
    }
    if (isEvent) {
      try { ev.json = JSON.parse(ev.data); } catch { ev.json = undefined; }
      if (ev.event === 'hello' && ev.id === null) this.hellos.push(ev);
      else if (ev.event === 'ping' && ev.id === null) this.pings.push(ev);
      else this.events.push(ev);
    }
  }

  notify() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** Wait until pred(this) is true (bounded). */
  async until(pred, what, limit = 10000) {
    const end = Date.now() + limit;
    while (!pred(this)) {
      if (Date.now() > end) throw new Error(`SSE: timed out waiting for ${what}; got ${this.events.length} events`);
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, Math.max(1, Math.min(200, end - Date.now())));
      });
    }
  }

  /** Stored events (those with an id), in order. */
  stored() { return this.events.filter((e) => e.id !== null); }

  close() { this.req.destroy(); this.closed = true; }
}

/** Fetch /metrics and return { 'name{labels}': value }. */
export async function metrics(base) {
  const r = await request(base, 'GET', '/metrics');
  const out = {};
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}
