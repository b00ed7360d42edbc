// scale.mjs - pieces for the scale-out suites (issue 3): several larkd on
// one PostgreSQL database, clients that fail over between them, and the
// checks that nothing acknowledged was lost or doubled.
//
//   Pair      larkd A and B on one database, started at once (so their
//             migrations race, as several hosts starting together would),
//             behind one lighttpd that sends POSTs to A and GETs to B
//             (conf/lighttpd-two.conf), plus a lighttpd for each alone.
//   Sender    sends numbered messages into a conversation; on an error or a
//             5xx it retries the same client_msg_id (API.md: idempotent
//             retries), moving to the next base URL; remembers every status.
//   WsSender  the same over a WebSocket session ({"type": "send"}), a new
//             session (next base URL) after a close.
//   Follower  one user's inbox over SSE, long-poll or WebSocket; on a
//             closed stream or an error it reconnects (next base URL) from
//             the last seq it has, the way a client that lost its host does.
//   verify()  every acknowledged message stored once, conversation seqs
//             gapless, and every follower got every message once, in order.
//
// Every loop is bounded by a count and a deadline; every wait by a limit.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import WebSocket from 'ws';
import { assert } from './harness.mjs';
import { Larkd, Lighttpd, removeTmpDir, sleep, tmpDir, top } from './stack.mjs';
import { Api, boundConnect, request, token } from './client.mjs';

/** Settings every larkd of these suites gets: no per-user send limit. */
export const SCALE_ENV = { LARK_SEND_RATE: '0' };

export class Pair {
  /** db: the LARK_DB both processes share; env: extra settings for both. */
  constructor(db, env = {}) {
    this.dir = tmpDir('lark-pair-');
    const common = { ...SCALE_ENV, LARK_DB: db, ...env };
    this.a = new Larkd({ dir: this.dir, name: 'larkd-a', env: common });
    this.b = new Larkd({ dir: this.dir, name: 'larkd-b', env: common });
    this.webs = [];
  }

  web(name, conf, env) {
    const dir = path.join(this.dir, name);
    fs.mkdirSync(dir);
    const w = new Lighttpd({ dir, conf, env });
    this.webs.push(w);
    return w;
  }

  async start() {
    await Promise.all([this.a.start(), this.b.start()]);
    this.split = this.web('split', path.join(top, 'conf/lighttpd-two.conf'),
      { LARK_SOCKET: this.a.sock, LARK_SOCKET_B: this.b.sock, LARK_WS_SOCKET: this.a.wsSock });
    this.onlyA = this.web('only-a', undefined, { LARK_SOCKET: this.a.sock, LARK_WS_SOCKET: this.a.wsSock });
    this.onlyB = this.web('only-b', undefined, { LARK_SOCKET: this.b.sock, LARK_WS_SOCKET: this.b.wsSock });
    await Promise.all(this.webs.map((w) => w.start()));
    return this;
  }

  logs() {
    return this.a.logs() + this.b.logs() + this.webs.map((w) => w.logs()).join('');
  }

  /** SIGTERM both larkd; throws on a sanitizer report or an unclean exit. */
  async stop() {
    try {
      for (const w of this.webs) await w.stop();
      const codes = await Promise.all([this.a.stop(), this.b.stop()]);
      this.a.check(codes[0]);
      this.b.check(codes[1]);
    } finally {
      removeTmpDir(this.dir);
    }
  }
}

/** Create a group of members (first one admin) through base; returns its id. */
export async function makeGroup(base, members, title = 'scale') {
  const r = await new Api(base, members[0]).post('/v1/conversations', { type: 'group', title, members });
  assert.equal(r.status, 201, r.body);
  return r.json.id;
}

/** Read the whole history of a conversation, oldest first (paged). */
export async function history(base, user, conv) {
  const api = new Api(base, user);
  const out = [];
  for (let after = 0, pages = 0; pages < 10000; pages++) {
    const r = await api.get(`/v1/conversations/${conv}/messages?after=${after}&limit=200`);
    assert.equal(r.status, 200, r.body);
    out.push(...r.json.messages);
    if (!r.json.has_more || r.json.messages.length === 0) break;
    after = out[out.length - 1].seq;
  }
  return out;
}

function retryAfterMs(r) {
  const s = Number(r.headers && r.headers['retry-after']);
  return Number.isFinite(s) && s > 0 ? Math.min(s * 1000, 1000) : 200;
}

export class Sender {
  /**
   * user: sender id; bases: base URLs, tried in turn after failures;
   * conv: conversation id; count: messages to send (at most);
   * timeout: ms a request may stay silent before it counts as failed (0)
   * and is retried elsewhere - a host that vanished answers nothing.
   */
  constructor(user, bases, conv, count, { timeout = 15000 } = {}) {
    this.timeout = timeout;
    this.user = user;
    this.bases = bases;
    this.cur = 0;
    this.conv = conv;
    this.count = count;
    this.tok = token(user);
    this.acked = [];          // [{ n, client_msg_id, message, status, at, tries }], in order;
                              // at: wall ms of the answer, tries: every attempt's status
    this.statuses = new Map(); // status (0: no answer) -> times seen
    this.no503RetryAfter = 0;  // 503 answers without Retry-After
    this.stopped = false;
    this.attempts = 0;
  }

  note(status) { this.statuses.set(status, (this.statuses.get(status) || 0) + 1); }

  /** Send one message, retrying with the same client_msg_id (bounded). */
  async sendOne(n, deadline) {
    const id = crypto.randomUUID();
    const body = { conversation_id: this.conv, client_msg_id: id, body: `${this.user} #${n}` };
    const tries = [];
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${this.user}: #${n} not acknowledged before the deadline; statuses ${this.summary()}`);
      this.attempts++;
      let r;
      const t0 = Date.now();
      try {
        r = await request(this.bases[this.cur], 'POST', '/v1/messages',
          { tok: this.tok, body, timeout: this.timeout, connectTimeout: this.timeout });
      } catch (e) {
        r = { status: 0, error: e };
      }
      this.note(r.status);
      tries.push(r.status);
      tries.took = [...(tries.took || []), Date.now() - t0];
      if (r.status === 201 || r.status === 200) {
        assert.equal(r.json.client_msg_id, id);
        this.acked.push({ n, client_msg_id: id, message: r.json, status: r.status, at: Date.now(), tries });
        return;
      }
      if (r.status !== 0 && r.status < 500) throw new Error(`${this.user}: #${n} got ${r.status} ${r.body}`);
      if (r.status === 503 && !r.headers['retry-after']) this.no503RetryAfter++;
      this.cur = (this.cur + 1) % this.bases.length;
      await sleep(r.status === 0 ? 100 : retryAfterMs(r));
    }
  }

  /** Send up to count messages, one after another, until stop() or the deadline. */
  async run(deadlineMs = 120000) {
    const deadline = Date.now() + deadlineMs;
    for (let n = 0; n < this.count && !this.stopped; n++) await this.sendOne(n, deadline);
  }

  stop() { this.stopped = true; }

  summary() {
    return JSON.stringify(Object.fromEntries(this.statuses));
  }
}

/** ws:// of an http:// base URL. */
const wsUrl = (base) => base.replace(/^http/, 'ws') + '/v1/ws';

/**
 * Newline-delimited JSON lines of one WebSocket session (API.md
 * "WebSocket": a frame may hold several lines or part of one).
 */
class WsLines {
  /**
   * idleMs: when set, a {"type": "ping"} goes out every idleMs / 3 and a
   * session that hears nothing for idleMs is ended (the way a client
   * notices a host that vanished without a close).
   */
  constructor(url, onLine, onClose, { idleMs = 0 } = {}) {
    this.ws = new WebSocket(url, idleMs ? { handshakeTimeout: idleMs } : {});
    this.closed = false;
    let pending = '';
    let heard = Date.now();
    if (idleMs) {
      this.timer = setInterval(() => {
        if (Date.now() - heard > idleMs) this.ws.terminate();
        else if (this.ws.readyState === WebSocket.OPEN) this.ws.send('{"type":"ping"}\n');
      }, Math.max(50, Math.floor(idleMs / 3)));
    }
    this.ws.on('message', (d) => {
      heard = Date.now();
      pending += d.toString('utf8');
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        let obj;
        try { obj = JSON.parse(line); } catch { obj = { type: 'unparsable', line }; }
        onLine(obj);
      }
    });
    const closed = () => {
      if (this.closed) return;
      this.closed = true;
      clearInterval(this.timer);
      onClose();
    };
    this.ws.on('close', closed);
    this.ws.on('error', closed);
    this.open = new Promise((resolve) => {
      this.ws.once('open', () => resolve(true));
      this.ws.once('error', () => resolve(false));
      this.ws.once('close', () => resolve(false));
    });
  }

  send(obj) {
    if (!this.closed) this.ws.send(JSON.stringify(obj) + '\n');
  }

  close() {
    clearInterval(this.timer);
    this.ws.terminate();
  }
}

/**
 * A Sender over WebSocket: {"type": "send", ...} answered by "sent" (with
 * the stored message) or by an "error" naming the client_msg_id; after an
 * error or a closed session it retries the same client_msg_id (a new
 * session on the next base after a close). acked, statuses and tries as
 * for Sender, with the answers as 'sent', 'duplicate' (a "sent" for a
 * message stored by an earlier attempt: an older created_at is all that
 * tells, so it is counted as 'sent'), 'error:<code>' and 'closed'.
 */
export class WsSender {
  /** As Sender; idleMs: a session silent that long (pings unanswered) is given up. */
  constructor(user, bases, conv, count, { idleMs = 20000 } = {}) {
    this.idleMs = idleMs;
    this.user = user;
    this.bases = bases;
    this.cur = 0;
    this.conv = conv;
    this.count = count;
    this.tok = token(user);
    this.acked = [];
    this.statuses = new Map();
    this.stopped = false;
    this.session = null;
    this.waiting = null; // { id, resolve } of the send in flight
  }

  note(status) { this.statuses.set(status, (this.statuses.get(status) || 0) + 1); }

  summary() { return JSON.stringify(Object.fromEntries(this.statuses)); }

  /** An authenticated session, or null (it failed; the next base is tried). */
  async connect() {
    const answered = [];
    let wake = null;
    const s = new WsLines(wsUrl(this.bases[this.cur]), (line) => {
      if (line.type === 'hello' || (line.type === 'error' && !line.client_msg_id)) {
        answered.push(line);
        if (wake) wake();
        return;
      }
      const w = this.waiting;
      if (w && line.client_msg_id === w.id && (line.type === 'sent' || line.type === 'error')) {
        this.waiting = null;
        w.resolve(line);
      }
    }, () => {
      if (wake) wake();
      const w = this.waiting;
      if (w) {
        this.waiting = null;
        w.resolve({ type: 'closed' });
      }
    }, { idleMs: this.idleMs });
    if (!(await s.open)) return null;
    s.send({ type: 'auth', token: this.tok, since: null });
    const end = Date.now() + 15000;
    while (!answered.length && !s.closed && Date.now() < end) {
      await new Promise((r) => { wake = r; setTimeout(r, 200); });
    }
    if (answered[0] && answered[0].type === 'hello') return s;
    this.note(answered[0] ? `auth:${answered[0].error && answered[0].error.code}` : 'closed');
    s.close();
    return null;
  }

  async sendOne(n, deadline) {
    const id = crypto.randomUUID();
    const cmd = { type: 'send', conversation_id: this.conv, client_msg_id: id, body: `${this.user} #${n}` };
    const tries = [];
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${this.user}: #${n} not acknowledged before the deadline; ${this.summary()}`);
      if (!this.session || this.session.closed) {
        this.session = await this.connect();
        if (!this.session) {
          this.cur = (this.cur + 1) % this.bases.length;
          await sleep(200);
          continue;
        }
      }
      const answer = await new Promise((resolve) => {
        this.waiting = { id, resolve };
        this.session.send(cmd);
        setTimeout(() => {
          if (this.waiting && this.waiting.id === id) {
            this.waiting = null;
            resolve({ type: 'timeout' });
          }
        }, this.idleMs);
      });
      const status = answer.type === 'error' ? `error:${answer.error && answer.error.code}` : answer.type;
      this.note(status);
      tries.push(status);
      if (answer.type === 'sent') {
        assert.equal(answer.message.client_msg_id, id);
        this.acked.push({ n, client_msg_id: id, message: answer.message, status, at: Date.now(), tries });
        return;
      }
      if (answer.type === 'error' && !['db_unavailable', 'draining'].includes(answer.error && answer.error.code)) {
        throw new Error(`${this.user}: #${n} got ${JSON.stringify(answer)}`);
      }
      if (answer.type !== 'error') { // closed or stuck: a new session elsewhere
        if (this.session) this.session.close();
        this.session = null;
        this.cur = (this.cur + 1) % this.bases.length;
      }
      await sleep(200);
    }
  }

  async run(deadlineMs = 120000) {
    const deadline = Date.now() + deadlineMs;
    try {
      for (let n = 0; n < this.count && !this.stopped; n++) await this.sendOne(n, deadline);
    } finally {
      if (this.session) this.session.close();
    }
  }

  stop() { this.stopped = true; }
}

/**
 * One user's inbox, followed over 'sse', 'poll' or 'ws' from bases[0];
 * after a failure it reconnects to the next base with the last seq it
 * holds.
 * events: stored events in inbox order, each once (a duplicate across a
 * reconnect is dropped and counted, as API.md tells clients to do).
 */
export class Follower {
  /**
   * idleMs: a connection that hears nothing (no event, SSE ping, long-poll
   * whitespace, WebSocket pong) for that long is given up and the next
   * base tried - lark.js's watchdog, for a host that vanished without
   * closing anything. Pair it with short server keep-alives.
   */
  constructor(user, bases, transport, { idleMs = 0 } = {}) {
    this.idleMs = idleMs;
    this.user = user;
    this.bases = bases;
    this.cur = 0;
    this.transport = transport;
    this.tok = token(user);
    this.events = [];
    this.last = 0;
    this.connections = 0;     // connections that were answered 200
    this.reconnectEvents = 0; // SSE `event: reconnect` received
    this.abruptEnds = 0;      // SSE streams that ended without `event: reconnect`
    this.duplicates = 0;      // events at or below last, after a reconnect
    this.repeatsInConn = 0;   // the same seq twice on one connection (a bug)
    this.gaps = [];           // [expected, got]: the server skipped events (a bug)
    this.statuses = new Map();
    this.basesUsed = new Set();
    this.stopped = false;
    this.req = null;
    this.session = null; // the WebSocket session (ws)
    this.waiters = [];
  }

  note(status) { this.statuses.set(status, (this.statuses.get(status) || 0) + 1); }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** Take one stored event (envelope); seenInConn: seqs on this connection. */
  take(ev, seenInConn) {
    if (seenInConn.has(ev.seq)) this.repeatsInConn++;
    seenInConn.add(ev.seq);
    if (ev.seq <= this.last) {
      this.duplicates++;
      return;
    }
    if (ev.seq !== this.last + 1) this.gaps.push([this.last + 1, ev.seq]);
    this.events.push(ev);
    this.last = ev.seq;
    this.wake();
  }

  /** Follow until stop() or the deadline (bounded reconnects). */
  async run(deadlineMs = 180000) {
    const deadline = Date.now() + deadlineMs;
    for (let tries = 0; !this.stopped && Date.now() < deadline && tries < 5000; tries++) {
      const base = this.bases[this.cur];
      this.basesUsed.add(base);
      let r;
      try {
        r = this.transport === 'sse' ? await this.sseOnce(base)
          : this.transport === 'ws' ? await this.wsOnce(base) : await this.pollOnce(base);
      } catch (e) {
        r = { status: 0, error: e };
      }
      if (this.stopped) break;
      if (r.status === 200 && r.keep) continue; // a long-poll answered: poll again
      if (r.status !== 200) this.note(r.status);
      // a stream that ended, an error or a 5xx: reconnect elsewhere, from this.last
      if (r.status !== 200 || r.moveOn) this.cur = (this.cur + 1) % this.bases.length;
      await sleep(r.status === 503 ? retryAfterMs(r) : 100);
    }
  }

  pollOnce(base) {
    this.abort = new AbortController();
    return request(base, 'GET', `/v1/poll?since=${this.last}&timeout=10&limit=500`,
      { tok: this.tok, timeout: this.idleMs || 30000, connectTimeout: this.idleMs, signal: this.abort.signal })
      .then((r) => {
        if (r.status !== 200) return r;
        this.connections++;
        const seen = new Set();
        for (const ev of r.json.events) if (typeof ev.seq === 'number') this.take(ev, seen);
        return { status: 200, keep: true };
      });
  }

  sseOnce(base) {
    return new Promise((resolve) => {
      const seen = new Set();
      const req = http.get(`${base}/v1/events`, {
        headers: { Authorization: `Bearer ${this.tok}`, Accept: 'text/event-stream', 'Last-Event-ID': String(this.last) },
        agent: false,
      }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
          res.on('error', () => resolve({ status: res.statusCode, headers: res.headers }));
          return;
        }
        this.connections++;
        res.setEncoding('utf8');
        let pending = '';
        let told = false;
        res.on('data', (chunk) => {
          pending += chunk;
          let i;
          while ((i = pending.indexOf('\n\n')) >= 0) {
            const block = pending.slice(0, i);
            pending = pending.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
            }
            if (event === 'reconnect') { told = true; this.reconnectEvents++; continue; }
            if (!data) continue;
            const ev = JSON.parse(data);
            if (typeof ev.seq === 'number') this.take(ev, seen);
          }
        });
        let ended = false;
        const done = () => {
          if (ended) return;
          ended = true;
          if (!told && !this.stopped) this.abruptEnds++;
          resolve({ status: 200, moveOn: !told });
        };
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      });
      this.req = req;
      req.setTimeout(this.idleMs || 60000, () => req.destroy());
      boundConnect(req, this.idleMs);
      req.on('error', (e) => resolve({ status: 0, error: e }));
    });
  }

  /**
   * One WebSocket session: auth with since = the last seq held, then
   * events until the session closes. An auth refused (the database
   * unreachable: an error line, then the close) counts as a 503.
   */
  wsOnce(base) {
    return new Promise((resolve) => {
      const seen = new Set();
      let hello = false;
      let refused = null;
      const s = new WsLines(wsUrl(base), (line) => {
        if (line.type === 'hello') {
          hello = true;
          this.connections++;
        } else if (line.type === 'error' && !hello) {
          refused = line.error && line.error.code;
        } else if (typeof line.seq === 'number') {
          this.take(line, seen);
        }
      }, () => {
        this.session = null;
        if (hello) {
          if (!this.stopped) this.abruptEnds++;
          resolve({ status: 200, moveOn: true });
        } else {
          resolve({ status: refused === 'db_unavailable' ? 503 : 0, error: refused });
        }
      }, { idleMs: this.idleMs });
      this.session = s;
      s.open.then((ok) => {
        if (ok) s.send({ type: 'auth', token: this.tok, since: this.last });
      });
    });
  }

  stop() {
    this.stopped = true;
    if (this.session) this.session.close();
    if (this.req) this.req.destroy();
    if (this.abort) this.abort.abort();
    this.wake();
  }

  /** Wait until pred(this) (bounded). */
  async until(pred, what, limit = 30000) {
    const end = Date.now() + limit;
    while (!pred(this)) {
      if (Date.now() > end) {
        throw new Error(`${this.user} (${this.transport}): timed out after ${limit} ms waiting for ${what}; ` +
          `has ${this.events.length} events, last seq ${this.last}, connections ${this.connections}, statuses ` +
          `${JSON.stringify(Object.fromEntries(this.statuses))}`);
      }
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** The message events of conversation conv, in inbox order. */
  messages(conv) {
    return this.events.filter((e) => e.type === 'message' && e.data.conversation_id === conv);
  }
}

/**
 * The checks every scale suite ends with: the conversation's history holds
 * each acknowledged message exactly once, seqs 1..N gapless, each sender's
 * messages in the order it sent them; each follower got every message of
 * the conversation once, in seq order, its inbox gapless.
 */
export async function verify(base, conv, senders, followers, { catchUp = 60000 } = {}) {
  const acked = senders.flatMap((s) => s.acked);
  const hist = await history(base, senders[0].user, conv);
  const seqs = hist.map((m) => m.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'conversation seqs are 1..N, gapless');
  const ids = hist.map((m) => `${m.sender}/${m.client_msg_id}`);
  assert.equal(new Set(ids).size, ids.length, 'no message stored twice');
  const byId = new Map(hist.map((m) => [m.id, m]));
  for (const a of acked) {
    const m = byId.get(a.message.id);
    assert.ok(m, `acknowledged ${a.message.sender} #${a.n} (seq ${a.message.seq}) is in the history`);
    assert.equal(m.seq, a.message.seq, 'an acknowledged seq never changes');
  }
  // Only acknowledged messages exist: every send was retried until acked.
  assert.equal(hist.length, acked.length, 'the history holds exactly the acknowledged messages');
  for (const s of senders) {
    const mine = s.acked.map((a) => a.message.seq);
    assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `${s.user}: its messages in the order sent`);
  }
  const n = hist.length;
  for (const f of followers) {
    await f.until((x) => x.messages(conv).length >= n, `all ${n} messages`, catchUp);
    const got = f.messages(conv).map((e) => e.data.seq);
    assert.deepEqual(got, seqs, `${f.user} (${f.transport}): every message once, in seq order`);
    assert.deepEqual(f.gaps, [], `${f.user}: inbox gapless`);
    assert.equal(f.repeatsInConn, 0, `${f.user}: no event twice on one connection`);
    assert.deepEqual(f.events.map((e) => e.seq), f.events.map((_, i) => i + 1), `${f.user}: inbox seqs 1..`);
  }
  return n;
}

/** Members' inboxes read directly (paged long-polls with timeout=0). */
export async function inbox(base, user) {
  const api = new Api(base, user);
  const out = [];
  for (let since = 0, pages = 0; pages < 10000; pages++) {
    const r = await api.get(`/v1/poll?since=${since}&timeout=0&limit=1000`);
    assert.equal(r.status, 200, r.body);
    if (r.json.events.length === 0) break;
    out.push(...r.json.events);
    since = r.json.next;
  }
  return out;
}
