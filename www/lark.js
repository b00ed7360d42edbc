// lark.js - the lark browser client (docs/API.md "Browser client").
//
// One ES module, no dependencies, no build step:
//
//   import { connect } from '/lark.js';
//   const lark = connect({ token, onEvent, onStatus });
//   await lark.send({ to: 'bob', body: 'Hi' });
//   const photo = await lark.upload(file, { onProgress: (sent, total) => {} });
//   await lark.send({ to: 'bob', body: '', media: [photo.id] });
//
// It keeps one ordered, resumable stream of the user's inbox over the best
// transport the network allows - WebSocket, else Server-Sent Events, else
// long-poll - and sends the chat commands. What it guarantees, and why it
// is shaped so:
//
// - Every stored event reaches onEvent once, in seq order. Delivery is
//   at-least-once (API.md "The inbox"), so events at or below the last
//   processed seq are dropped; a reconnect resumes from that seq.
// - Processed events are acknowledged in batches (one ack per ackDelay ms),
//   which is what turns messages "delivered" for their senders.
// - Any failure or close means: reconnect after a random delay in
//   [0, min(cap, base * 2^attempt)] ("full jitter"), so that thousands of
//   clients dropped by one restart do not come back in one wave.
// - A browser EventSource that gets a non-200 answer (a 503 while larkd
//   restarts) gives up for good, and one that reconnects by itself would
//   resume from the last event it saw, not the last one processed: so the
//   client closes it on any error and reconnects itself, with ?since=.
// - A stream proves itself (API.md "GET /v1/events"): an SSE stream is open
//   only once its first event (the server's `hello`) arrives, not when its
//   headers do, and a WebSocket once the server answers a line. A proxy
//   that buffers (Debian's default privoxy holds back every text/* that is
//   not plain; an nginx or load balancer that ignores X-Accel-Buffering
//   sends 4 KiB batches) passes headers, or even a first batch, and then
//   nothing: so every stream has a watchdog - openTimeout for the first
//   event, then 2 x keepalive + stuckMargin between events (the server sends
//   a `ping` event every keepalive) - and a stream that trips it is closed
//   as stuck.
// - After a connection fails without ever opening, or is stuck before it
//   proved that events flow as they are written (SSE: a `ping` came), one
//   authenticated probe (a presence heartbeat) tells the cases apart: 401
//   means the token (ask for a new one), 200 means the server is fine and
//   this transport is not (a strike: in 'auto', move down after two, or at
//   once when the stream was stuck while the probe came back fast - a
//   buffering proxy, which another try would only wait out again), anything
//   else is an outage (back off and retry the same transport). A stream
//   that proved itself and then went quiet is a network that went away
//   (a laptop asleep, a Wi-Fi change): reconnect, no strike.
// - 'auto' remembers a transport only once it proved itself, and forgets
//   one that got stuck, so a proxy that lets a first batch through cannot
//   make the client come back to a stream that never delivers.
// - Sends wait in an outbox while the stream is down and are sent one at a
//   time, in order; a retry reuses the client_msg_id, so the server stores
//   each message once (API.md "POST /v1/messages").
// - WebSocket lines are newline-delimited JSON and a frame may end in the
//   middle of one (API.md "WebSocket"): frames are appended to a buffer and
//   complete lines taken from it.

const EVENT_TYPES = ['message', 'receipt', 'member', 'conversation', 'typing', 'presence'];
const ORDER = ['ws', 'sse', 'poll'];
const AUTH_CODES = new Set(['missing_token', 'invalid_token', 'token_expired']);
// Errors worth retrying: the server was busy, restarting or failing.
const RETRY_CODES = new Set(['rate_limited', 'draining', 'db_unavailable', 'unavailable', 'internal']);
const REMEMBER_KEY = 'lark.transport';

const DEFAULTS = {
  transport: 'auto',
  since: null,
  backoffBase: 500, // ms, the first reconnect waits up to this
  backoffCap: 30000, // ms, no reconnect waits longer
  ackDelay: 250, // ms, acks of a burst of events go out as one
  // ms for a stream's first event (SSE hello, the answer to a WebSocket
  // ping). It came within tens of ms through every proxy that streams
  // (measured, docs/PROXIES.md); a buffering one never lets it through.
  openTimeout: 4000,
  keepalive: 15000, // ms between the server's SSE pings (its sse_keepalive)
  stuckMargin: 5000, // ms beyond 2 keep-alive intervals before a quiet stream is stuck
  pollTimeout: 25, // s, how long the server holds a long-poll
  pingInterval: 25000, // ms between WebSocket pings (the WebSocket's keep-alive)
  sendTimeout: 15000, // ms to wait for the answer to a send
  typingInterval: 3000, // ms, at most one typing notice per conversation
  heartbeat: true, // POST /v1/presence/heartbeat while connected
  remember: 7 * 24 * 3600 * 1000, // ms 'auto' starts with what worked last
};

/** An error from the server ({code, message, status}) or the client. */
export class LarkError extends Error {
  constructor(code, message, { status = 0, retryAfter = 0 } = {}) {
    super(message || code);
    this.name = 'LarkError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from Retry-After
  }
  get retryable() {
    return this.status === 0 || this.status >= 500 || RETRY_CODES.has(this.code);
  }
}

/** A random delay for reconnect number attempt: "full jitter". */
export function backoffDelay(attempt, base = DEFAULTS.backoffBase, cap = DEFAULTS.backoffCap) {
  return Math.random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
}

/** A client_msg_id: random, so retries from any tab never collide. */
export function newId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

function storage() {
  try {
    return globalThis.localStorage || null;
  } catch {
    return null; // access denied (e.g. sandboxed iframe)
  }
}

function wsUrl(base) {
  return base.replace(/^http/, 'ws') + '/v1/ws';
}

/**
 * Open the stream. options: url (default: this page's origin), token (a
 * string, or a function (refresh) => token | Promise<token>; called again
 * with refresh = true after the server refused a token), transport
 * ('auto' | 'ws' | 'sse' | 'poll'), since (the last seq already processed),
 * onEvent(event), onStatus(status); tuning: see DEFAULTS.
 */
export function connect(options) {
  return new LarkClient(options);
}

class LarkClient {
  #o;
  #url;
  #token = null; // the current token string
  #conn = null; // the transport in use, or null between attempts
  #state = 'connecting';
  #closed = false;
  #attempt = 0; // failed attempts since the last open
  #timer = null; // pending reconnect
  #last; // seq of the last processed stored event, or null
  #acked; // the last seq acknowledged to the server
  #ackWanted; // the seq to acknowledge next
  #ackTimer = null;
  #autoIndex = 0; // into ORDER, for 'auto'
  #strikes = {}; // per transport: failures while the server was fine
  #outbox = []; // sends waiting: {fields, resolve, reject}
  #sending = false;
  #sendTimer = null;
  #sendAttempt = 0;
  #reads = new Map(); // conversation id -> seq to report read
  #typingAt = new Map(); // conversation id -> time of the last notice
  #viewport = null; // users to watch, re-sent on every (re)connect
  #beatTimer = null;
  #beatInterval = 15000; // ms, the server's presence interval
  #beatGen = 0; // bumped to end a heartbeat loop
  duplicates = 0; // events dropped because their seq was already processed

  constructor(options = {}) {
    this.#o = { ...DEFAULTS, ...options };
    const origin = globalThis.location ? globalThis.location.origin : '';
    this.#url = (options.url || origin).replace(/\/+$/, '');
    this.#last = options.since ?? null;
    this.#acked = this.#last;
    this.#ackWanted = this.#last;
    if (!['auto', ...ORDER].includes(this.#o.transport))
      throw new TypeError(`transport must be auto, ws, sse or poll, not ${this.#o.transport}`);
    if (this.#o.transport === 'auto') this.#autoIndex = this.#remembered();
    this.#attemptConnect();
  }

  // ---- public API ---------------------------------------------------------

  /** The transport in use or being tried: 'ws', 'sse' or 'poll'. */
  get transport() {
    return this.#conn ? this.#conn.kind : this.#pick();
  }

  /** 'connecting', 'open', 'reconnecting', 'unauthorized' or 'closed'. */
  get state() {
    return this.#state;
  }

  /** The seq of the last event processed (resume point), or null. */
  get lastSeq() {
    return this.#last;
  }

  /** Sends waiting for the connection. */
  get queued() {
    return this.#outbox.length;
  }

  /**
   * Send a message: fields as for POST /v1/messages ({to | conversation_id,
   * body, type, meta, media, client_msg_id}; media: ids from upload()).
   * Resolves with the stored message.
   * Waits while disconnected; retries keep the client_msg_id. Rejects with
   * a LarkError only when the server refuses it for good (e.g. 403).
   */
  send(fields) {
    const f = { ...fields };
    if (!f.client_msg_id) f.client_msg_id = newId();
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new LarkError('closed', 'the client is closed'));
      this.#outbox.push({ fields: f, resolve, reject });
      this.#pump();
    });
  }

  /** Acknowledge everything up to seq (done by itself for processed events). */
  ack(seq) {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError('seq must be an event seq');
    if (this.#ackWanted === null || seq > this.#ackWanted) this.#ackWanted = seq;
    this.#scheduleAck();
  }

  /**
   * Mark a conversation read up to seq (its message seq): the senders get
   * read receipts. Kept and sent again after a reconnect if need be.
   */
  read(conversationId, seq) {
    const had = this.#reads.get(conversationId);
    if (had === undefined || seq > had) this.#reads.set(conversationId, seq);
    return this.#flushReads();
  }

  /** Tell the other members "typing" (ephemeral; dropped while disconnected). */
  typing(conversationId) {
    const now = Date.now();
    if (this.#state !== 'open' || now - (this.#typingAt.get(conversationId) || 0) < this.#o.typingInterval)
      return;
    this.#typingAt.set(conversationId, now);
    if (this.#conn && this.#conn.kind === 'ws') {
      this.#conn.write({ type: 'typing', conversation_id: conversationId });
      return;
    }
    this.request('POST', `/v1/conversations/${encodeURIComponent(conversationId)}/typing`).catch(() => {});
  }

  /**
   * Watch these users' presence (API.md "Presence"): their current state
   * and every change arrive as 'presence' events. Set again by itself
   * after each reconnect (a viewport ends with the last connection).
   */
  watch(users) {
    this.#viewport = [...new Set(users)].slice(0, 200);
    if (this.#state === 'open') return this.#sendWatch();
    return Promise.resolve();
  }

  /**
   * An authenticated request to the HTTP API; resolves with the JSON body
   * (null for 204), rejects with a LarkError. body: an object, sent as JSON.
   */
  async request(method, path, body) {
    for (let refreshed = false; ; refreshed = true) {
      const token = await this.#getToken(false);
      const headers = { Authorization: `Bearer ${token}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let res;
      try {
        res = await fetch(this.#url + path, {
          method, headers, cache: 'no-store',
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        throw new LarkError('network', `cannot reach the server: ${e.message}`);
      }
      const text = await res.text().catch(() => '');
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      if (res.ok) return json;
      const err = json && json.error ? json.error : { code: 'http_' + res.status, message: res.statusText };
      if (res.status === 401 && !refreshed && typeof this.#o.token === 'function') {
        await this.#getToken(true);
        continue;
      }
      throw new LarkError(err.code, err.message, {
        status: res.status, retryAfter: Number(res.headers.get('Retry-After')) || 0,
      });
    }
  }

  /**
   * Upload a file (a File or Blob) for a message (API.md "Media"), in two
   * steps: declare it (POST /v1/media/uploads, with its SHA-256), then PUT
   * the bytes where the server says - its own short-lived URL, or an S3
   * bucket's presigned one - with onProgress(sent, total) as they go.
   * Resolves with the media object ({id, content_type, size, sha256, name,
   * status}); pass its id in send({media: [id]}). Options: name and type
   * (default: the file's own), onProgress, signal (an AbortSignal). A page
   * without crypto.subtle (served over plain http from another host than
   * localhost) uploads in one step (POST /v1/media) instead. Rejects with
   * a LarkError (e.g. media_too_large, quota_exceeded, rate_limited).
   */
  async upload(file, { name, type, onProgress, signal } = {}) {
    const contentType = type || file.type || 'application/octet-stream';
    const fileName = name || file.name || 'file';
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (!subtle) {
      const token = await this.#getToken(false);
      const url = `${this.#url}/v1/media?name=${encodeURIComponent(fileName)}`;
      const answer = await sendBytes('POST', url, { Authorization: `Bearer ${token}`, 'Content-Type': contentType },
        file, onProgress, signal);
      return answer.media;
    }
    const digest = new Uint8Array(await subtle.digest('SHA-256', await file.arrayBuffer()));
    const sha256 = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
    const d = await this.request('POST', '/v1/media/uploads',
      { content_type: contentType, size: file.size, name: fileName, sha256 });
    const answer = await sendBytes(d.upload.method, d.upload.url, d.upload.headers, file, onProgress, signal);
    // lark's own URL answers with the item, ready; a bucket answers for
    // itself, and the server confirms the upload when a message names it
    return answer && answer.media ? answer.media : d.media;
  }

  /**
   * The bytes of a media item as a Blob (GET /v1/media/{id}, with the
   * token in a header; a redirect to a bucket is followed, which needs
   * the bucket to allow this page's origin - docs/OPERATIONS.md). For an
   * <img> or a download link, make an object URL of it.
   */
  async fetchMedia(id) {
    for (let refreshed = false; ; refreshed = true) {
      const token = await this.#getToken(false);
      let res;
      try {
        res = await fetch(`${this.#url}/v1/media/${encodeURIComponent(id)}`, { headers: { Authorization: `Bearer ${token}` } });
      } catch (e) {
        throw new LarkError('network', `cannot reach the server: ${e.message}`);
      }
      if (res.ok) return res.blob();
      if (res.status === 401 && !refreshed && typeof this.#o.token === 'function') {
        await this.#getToken(true);
        continue;
      }
      const err = await res.json().then((j) => j.error).catch(() => null) || { code: 'http_' + res.status, message: res.statusText };
      throw new LarkError(err.code, err.message, { status: res.status });
    }
  }

  /** Stop for good: close the connection, reject the sends still waiting. */
  close() {
    if (this.#closed) return;
    this.#flushAck(true);
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#sendTimer);
    this.#stopHeartbeat();
    if (this.#conn) this.#conn.stop();
    this.#conn = null;
    for (const item of this.#outbox.splice(0)) item.reject(new LarkError('closed', 'the client was closed'));
    this.#setState('closed', {});
  }

  // ---- connection lifecycle ------------------------------------------------

  #pick() {
    if (this.#o.transport !== 'auto') return this.#o.transport;
    return ORDER[this.#autoIndex];
  }

  #remembered() {
    const available = ORDER.map((k) => (k === 'ws' ? 'WebSocket' : k === 'sse' ? 'EventSource' : 'fetch'))
      .findIndex((api) => typeof globalThis[api] === 'function');
    let index = Math.max(0, available);
    try {
      const r = JSON.parse(storage()?.getItem(REMEMBER_KEY) || 'null');
      if (r && ORDER.includes(r.transport) && Date.now() - r.at < this.#o.remember)
        index = Math.max(index, ORDER.indexOf(r.transport));
    } catch {
      /* nothing remembered */
    }
    return index;
  }

  #remember(kind) {
    try {
      storage()?.setItem(REMEMBER_KEY, JSON.stringify({ transport: kind, at: Date.now() }));
    } catch {
      /* storage full or denied: start from the top next time */
    }
  }

  /** Drop what is remembered if it is kind: it got stuck. */
  #forget(kind) {
    try {
      const r = JSON.parse(storage()?.getItem(REMEMBER_KEY) || 'null');
      if (r && r.transport === kind) storage().removeItem(REMEMBER_KEY);
    } catch {
      /* nothing remembered, or storage denied */
    }
  }

  #setState(state, extra) {
    this.#state = state;
    const status = { state, transport: this.transport, attempt: this.#attempt, lastSeq: this.#last, ...extra };
    if (this.#o.onStatus) {
      try {
        this.#o.onStatus(status);
      } catch (e) {
        console.error('lark: onStatus threw', e);
      }
    }
  }

  async #getToken(refresh) {
    const t = this.#o.token;
    if (typeof t !== 'function') return t;
    if (refresh || this.#token === null) this.#token = await t(refresh);
    return this.#token;
  }

  async #attemptConnect() {
    this.#timer = null;
    if (this.#closed) return;
    const kind = this.#pick();
    this.#setState(this.#attempt ? 'reconnecting' : 'connecting', { transport: kind });
    let token;
    try {
      token = await this.#getToken(false);
    } catch (e) {
      this.#retryLater({ error: `no token: ${e.message}` });
      return;
    }
    if (this.#closed) return;
    const Transport = { ws: WsTransport, sse: SseTransport, poll: PollTransport }[kind];
    this.#conn = new Transport(this, this.#url, token, this.#o);
    this.#conn.start();
  }

  /** Reconnect after a backoff delay, or after the delay the server asked for. */
  #retryLater(extra = {}, asked = undefined) {
    if (this.#closed) return;
    const delay = Number.isFinite(asked) && asked >= 0
      ? Math.min(asked, this.#o.backoffCap)
      : backoffDelay(this.#attempt, this.#o.backoffBase, this.#o.backoffCap);
    this.#attempt++;
    this.#setState('reconnecting', { delay: Math.round(delay), ...extra });
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#attemptConnect(), delay);
  }

  // Called by transports.

  /** conn delivered its first event: it is open (not yet proven, for SSE). */
  _opened(conn) {
    if (conn !== this.#conn) return;
    this.#attempt = 0;
    this.#setState('open', { transport: conn.kind });
    this.#startHeartbeat();
    if (this.#viewport) this.#sendWatch().catch(() => {});
    this.#flushAck();
    this.#flushReads().catch(() => {});
    // Sends waiting out a backoff go now: the server is back.
    clearTimeout(this.#sendTimer);
    this.#sendTimer = null;
    this.#sendAttempt = 0;
    this.#pump();
  }

  /**
   * conn showed that events reach the page as they are written (WebSocket
   * and long-poll: once open; SSE: a ping after the first event): 'auto'
   * remembers it, and its strikes are forgiven.
   */
  _proven(conn) {
    if (conn !== this.#conn) return;
    this.#strikes[conn.kind] = 0;
    if (this.#o.transport === 'auto') this.#remember(conn.kind);
  }

  /**
   * conn ended; info: {opened, proven, stuck, unauthorized, error, retryMs}.
   * stuck: its watchdog found it silent (see the top).
   */
  async _lost(conn, info) {
    if (conn !== this.#conn) return;
    conn.stop();
    this.#conn = null;
    this.#stopHeartbeat();
    if (this.#closed) return;
    if (info.unauthorized) {
      await this.#unauthorized();
      return;
    }
    let demoted = false;
    if (!info.opened || (info.stuck && !info.proven)) {
      // Was it the token, this transport, or the server? (see the top)
      const asked = Date.now();
      const probe = await this.#probe();
      const rtt = Date.now() - asked;
      if (this.#closed) return;
      if (probe === 401) {
        await this.#unauthorized();
        return;
      }
      if (probe === 200) {
        if (info.stuck) this.#forget(conn.kind);
        demoted = this.#strike(conn.kind, info.stuck && rtt < this.#o.openTimeout / 2);
      }
    }
    const error = info.error || 'connection lost';
    // The server is fine and the next transport untried: no reason to wait.
    if (demoted) this.#retryLater({ error, fallback: true }, 0);
    else this.#retryLater({ error }, info.retryMs);
  }

  /**
   * A strike against kind while the server answered; in 'auto', move down
   * after two, or at once when decisive. Returns true if it moved down.
   */
  #strike(kind, decisive) {
    if (this.#o.transport !== 'auto') return false;
    const n = (this.#strikes[kind] = (this.#strikes[kind] || 0) + 1);
    if ((n < 2 && !decisive) || this.#autoIndex >= ORDER.length - 1 || ORDER[this.#autoIndex] !== kind)
      return false;
    this.#autoIndex++;
    this.#attempt = 0;
    return true;
  }

  async #unauthorized() {
    if (typeof this.#o.token === 'function') {
      try {
        await this.#getToken(true);
        this.#retryLater({ error: 'token refused; got a new one' });
        return;
      } catch {
        /* fall through: no new token to be had */
      }
    }
    this.#stopHeartbeat();
    this.#setState('unauthorized', { error: 'the server refused the token' });
  }

  /** Status of an authenticated heartbeat: 200, 401, another status, or 0. */
  async #probe() {
    try {
      const token = await this.#getToken(false);
      const res = await fetch(this.#url + '/v1/presence/heartbeat', {
        method: 'POST', headers: { Authorization: `Bearer ${token}` }, cache: 'no-store',
      });
      return res.status;
    } catch {
      return 0;
    }
  }

  // ---- events ----------------------------------------------------------------

  _deliver(ev) {
    if (!ev || typeof ev !== 'object') return;
    if (Number.isSafeInteger(ev.seq)) {
      if (this.#last !== null && ev.seq <= this.#last) {
        this.duplicates++;
        return;
      }
      this.#last = ev.seq;
    }
    if (this.#o.onEvent) {
      try {
        this.#o.onEvent(ev);
      } catch (e) {
        console.error('lark: onEvent threw', e); // processed all the same
      }
    }
    if (Number.isSafeInteger(ev.seq) && this.#o.autoAck !== false) this.ack(ev.seq);
  }

  /** The long-poll's `next` when nothing was processed yet. */
  _resumeFrom(seq) {
    if (this.#last === null && Number.isSafeInteger(seq)) {
      this.#last = seq;
      this.#acked = seq; // the poll that told us acknowledged it
    }
  }

  /** A long-poll with since = seq acknowledged it. */
  _ackedBy(seq) {
    if (seq !== null && (this.#acked === null || seq > this.#acked)) this.#acked = seq;
  }

  #scheduleAck() {
    if (this.#ackTimer || this.#closed) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = null;
      this.#flushAck();
    }, this.#o.ackDelay);
  }

  #flushAck(unloading = false) {
    const seq = this.#ackWanted;
    if (seq === null || (this.#acked !== null && seq <= this.#acked)) return;
    const conn = this.#conn;
    if (this.#state !== 'open' || !conn) return; // sent again after the reconnect
    if (conn.kind === 'poll' && !unloading) return; // the next poll's since= acknowledges
    if (conn.kind === 'ws') {
      conn.write({ type: 'ack', seq });
      this.#acked = seq;
      return;
    }
    const sent = this.#getToken(false).then((token) =>
      fetch(this.#url + '/v1/ack', {
        method: 'POST', keepalive: unloading, cache: 'no-store',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ seq }),
      }));
    sent.then((res) => {
      if (res.ok) this._ackedBy(seq);
      else this.#scheduleAck();
    }, () => this.#scheduleAck());
  }

  // ---- commands ----------------------------------------------------------------

  async #flushReads() {
    if (this.#state !== 'open' || !this.#conn) return;
    for (const [conv, seq] of [...this.#reads]) {
      if (this.#conn && this.#conn.kind === 'ws') {
        if (!this.#conn.write({ type: 'read', conversation_id: conv, seq })) return;
      } else {
        try {
          await this.request('POST', `/v1/conversations/${encodeURIComponent(conv)}/read`, { seq });
        } catch (e) {
          if (e.retryable) return; // kept for the next reconnect
        }
      }
      if (this.#reads.get(conv) === seq) this.#reads.delete(conv);
    }
  }

  async #sendWatch() {
    const users = this.#viewport;
    const r = await this.request('POST', '/v1/presence/watch', { users });
    // The state now, as events, so that one handler sees every change.
    for (const [user, p] of Object.entries((r && r.presence) || {}))
      this._deliver({ type: 'presence', data: { user, status: p.status, last_seen: p.last_seen } });
    return r;
  }

  #startHeartbeat() {
    this.#stopHeartbeat();
    if (!this.#o.heartbeat) return;
    const gen = this.#beatGen; // a beat still in flight from before is the last of its loop
    const beat = async () => {
      try {
        const r = await this.request('POST', '/v1/presence/heartbeat');
        if (r && r.interval > 0) this.#beatInterval = r.interval * 1000;
      } catch {
        /* the stream notices an outage by itself */
      }
      if (this.#state === 'open' && gen === this.#beatGen)
        this.#beatTimer = setTimeout(beat, this.#beatInterval);
    };
    beat();
  }

  #stopHeartbeat() {
    this.#beatGen++;
    clearTimeout(this.#beatTimer);
    this.#beatTimer = null;
  }

  /** Work the outbox: one send at a time, in order, only while connected. */
  async #pump() {
    if (this.#sending || this.#sendTimer || this.#state !== 'open' || this.#outbox.length === 0) return;
    const item = this.#outbox[0];
    this.#sending = true;
    try {
      const msg = await this.#sendOnce(item.fields);
      this.#outbox.shift();
      this.#sendAttempt = 0;
      // A message ends the others' "typing" display: the next keystroke
      // may tell them again at once.
      if (msg && msg.conversation_id) this.#typingAt.delete(msg.conversation_id);
      item.resolve(msg);
    } catch (e) {
      if (e instanceof LarkError && !e.retryable) {
        this.#outbox.shift();
        item.reject(e);
      } else {
        // Keep it first in line; try again after a pause (or a reconnect).
        const wait = Math.max(
          backoffDelay(this.#sendAttempt++, this.#o.backoffBase, this.#o.backoffCap),
          ((e && e.retryAfter) || 0) * 1000);
        this.#sendTimer = setTimeout(() => {
          this.#sendTimer = null;
          this.#pump();
        }, wait);
      }
    } finally {
      this.#sending = false;
    }
    this.#pump();
  }

  #sendOnce(fields) {
    const conn = this.#conn;
    if (conn && conn.kind === 'ws') return conn.sendMessage(fields, this.#o.sendTimeout);
    return this.request('POST', '/v1/messages', fields);
  }
}

// ---- uploads ------------------------------------------------------------------------

// Headers a browser sets itself and refuses from a page (it sends the real
// Content-Length, which a presigned URL may have signed).
const FORBIDDEN_HEADERS = new Set(['content-length', 'host', 'connection', 'expect']);

/**
 * Send body (a Blob) with method to url, with onProgress(sent, total): an
 * XMLHttpRequest where there is one (fetch reports no upload progress),
 * else fetch. Resolves with the JSON answer (null when it is not JSON);
 * rejects with a LarkError from the error body.
 */
function sendBytes(method, url, headers, body, onProgress, signal) {
  const fail = (status, text) => {
    let err = null;
    try {
      err = JSON.parse(text).error;
    } catch {
      /* not lark's JSON: a bucket's XML, say */
    }
    return new LarkError(err ? err.code : 'http_' + status, err ? err.message : `the upload failed (${status})`, { status });
  };
  const parse = (text) => {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  };
  const wanted = Object.entries(headers || {}).filter(([k]) => !FORBIDDEN_HEADERS.has(k.toLowerCase()));
  if (typeof XMLHttpRequest !== 'function') {
    return fetch(url, { method, headers: Object.fromEntries(wanted), body, signal }).then(async (res) => {
      const text = await res.text();
      if (!res.ok) throw fail(res.status, text);
      if (onProgress) onProgress(body.size, body.size);
      return parse(text);
    }, (e) => { throw new LarkError('network', `the upload failed: ${e.message}`); });
  }
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of wanted) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve(parse(xhr.responseText)) : reject(fail(xhr.status, xhr.responseText)));
    xhr.onerror = () => reject(new LarkError('network', 'the upload failed: network error'));
    xhr.onabort = () => reject(new LarkError('aborted', 'the upload was aborted'));
    if (signal) signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

// ---- transports ---------------------------------------------------------------
//
// Each one: constructor(client, url, token, options), start(), stop(). It
// calls client._opened(this) once its first event arrives,
// client._proven(this) once events are seen to flow as they are written,
// client._deliver(event) for each event in order, and client._lost(this,
// {opened, proven, stuck, unauthorized, error}) once, when it ends for any
// reason other than stop().
//
// A Watchdog is a stream's one timer: armed with how long the stream may
// stay silent, re-armed by every event, it ends the stream as stuck.

class Watchdog {
  #timer = null;
  #onStuck;

  constructor(onStuck) {
    this.#onStuck = onStuck;
  }

  /** Expect an event within ms; why: what the stuck stream waited for. */
  arm(ms, why) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#onStuck(why, ms), ms);
  }

  disarm() {
    clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** How long a stream that opened may stay silent: 2 x keep-alive + margin. */
function quietLimit(keepalive, o) {
  return 2 * keepalive + o.stuckMargin;
}

class PollTransport {
  kind = 'poll';
  #c;
  #url;
  #token;
  #o;
  #stopped = false;
  #abort = null;
  #opened = false;

  constructor(client, url, token, o) {
    this.#c = client;
    this.#url = url;
    this.#token = token;
    this.#o = o;
  }

  start() {
    this.#loop();
  }

  stop() {
    this.#stopped = true;
    if (this.#abort) this.#abort.abort();
  }

  async #loop() {
    while (!this.#stopped) {
      const since = this.#c.lastSeq;
      // The first poll answers at once, so that "open" (and the outbox)
      // does not wait for a held poll to time out; later ones are held.
      const q = new URLSearchParams({ timeout: String(this.#opened ? this.#o.pollTimeout : 0) });
      if (since !== null) q.set('since', String(since));
      this.#abort = new AbortController();
      // The server answers within timeout s; allow for a slow network.
      const guard = setTimeout(() => this.#abort.abort(), (this.#o.pollTimeout + 15) * 1000);
      let body;
      try {
        const res = await fetch(`${this.#url}/v1/poll?${q}`, {
          headers: { Authorization: `Bearer ${this.#token}` }, cache: 'no-store', signal: this.#abort.signal,
        });
        if (res.status === 401) return this.#end({ unauthorized: true });
        if (res.status !== 200) return this.#end({ error: `poll answered ${res.status}` });
        body = await res.json();
      } catch (e) {
        return this.#end({ error: `poll failed: ${e.message}` });
      } finally {
        clearTimeout(guard);
      }
      if (this.#stopped) return;
      this.#c._ackedBy(since);
      if (!this.#opened) {
        this.#opened = true;
        this.#c._opened(this);
        // A whole answer: no proxy can hold part of it back.
        this.#c._proven(this);
      }
      for (const ev of body.events || []) {
        if (this.#stopped) return;
        this.#c._deliver(ev);
      }
      this.#c._resumeFrom(body.next);
    }
  }

  #end(info) {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#c._lost(this, { opened: this.#opened, ...info });
  }
}

class SseTransport {
  kind = 'sse';
  #c;
  #url;
  #token;
  #o;
  #es = null;
  #opened = false; // the first event came
  #proven = false; // a ping came after it
  #stopped = false;
  #dog;

  constructor(client, url, token, o) {
    this.#c = client;
    this.#url = url;
    this.#token = token;
    this.#o = o;
    this.#dog = new Watchdog((why, ms) => this.#end({ stuck: true, error: `stream stuck: ${why} within ${ms} ms` }));
  }

  async start() {
    // EventSource cannot send headers, and a token in a URL ends up in
    // logs: a fresh single-use ticket (POST /v1/tickets, valid 60 s) stands
    // for it, one per connection (docs/API.md "Tickets"). Getting it counts
    // in the time the stream has to open.
    this.#dog.arm(this.#o.openTimeout, 'no first event');
    let ticket;
    try {
      ticket = (await this.#c.request('POST', '/v1/tickets')).ticket;
    } catch (e) {
      if (e instanceof LarkError && e.status === 401) return this.#end({ unauthorized: true });
      return this.#end({ error: `no ticket: ${e.message}` });
    }
    if (this.#stopped) return;
    const q = new URLSearchParams({ ticket });
    const since = this.#c.lastSeq;
    if (since !== null) q.set('since', String(since));
    // Headers alone prove nothing (a buffering proxy sends them): only an
    // event opens the stream, and the server sends hello at once.
    const es = (this.#es = new EventSource(`${this.#url}/v1/events?${q}`));
    es.addEventListener('hello', () => this.#heard(false));
    es.addEventListener('ping', () => this.#heard(true));
    const onEvent = (e) => {
      if (this.#stopped) return;
      this.#heard(false);
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return; // not ours
      }
      this.#c._deliver(ev);
    };
    for (const type of EVENT_TYPES) es.addEventListener(type, onEvent);
    // The server drains: go elsewhere after our own jittered delay.
    es.addEventListener('reconnect', () => this.#end({ opened: true, proven: true, error: 'server restarting' }));
    // Whatever the error, take over: see the top of this file.
    es.onerror = () => this.#end({ error: 'event stream failed' });
  }

  /** An event came; ping: it was a keep-alive. */
  #heard(ping) {
    if (this.#stopped) return;
    this.#dog.arm(quietLimit(this.#o.keepalive, this.#o), 'no event');
    if (!this.#opened) {
      this.#opened = true;
      this.#c._opened(this);
    } else if (ping && !this.#proven) {
      // A ping written a keep-alive after the first event reached us on
      // its own: this stream is not a proxy's buffer let go at once.
      this.#proven = true;
      this.#c._proven(this);
    }
  }

  stop() {
    this.#stopped = true;
    this.#dog.disarm();
    if (this.#es) this.#es.close();
  }

  #end(info) {
    if (this.#stopped) return;
    this.stop();
    this.#c._lost(this, { opened: this.#opened, proven: this.#proven, ...info });
  }
}

class WsTransport {
  kind = 'ws';
  #c;
  #url;
  #token;
  #o;
  #ws = null;
  #buf = '';
  #decoder = new TextDecoder();
  #opened = false;
  #stopped = false;
  #unauthorized = false;
  #pingTimer = null;
  #dog;
  #pending = new Map(); // client_msg_id -> {resolve, reject, timer}

  constructor(client, url, token, o) {
    this.#c = client;
    this.#url = url;
    this.#token = token;
    this.#o = o;
    this.#dog = new Watchdog((why, ms) => this.#end({ stuck: true, error: `session stuck: ${why} within ${ms} ms` }));
  }

  start() {
    let ws;
    try {
      ws = this.#ws = new WebSocket(wsUrl(this.#url));
    } catch (e) {
      queueMicrotask(() => this.#end({ error: `no WebSocket: ${e.message}` }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    // From the connect to the first answer (a proxy may take the upgrade,
    // or the CONNECT, and then pass nothing).
    this.#dog.arm(this.#o.openTimeout, 'no answer');
    ws.onopen = () => {
      // Authentication is in-band: the bridge sees no headers (API.md).
      this.write({ type: 'auth', token: this.#token, since: this.#c.lastSeq });
      // The server answers a good auth with hello (API.md), or at least
      // this ping with a pong: either proves the session works.
      this.write({ type: 'ping' });
      this.#pingTimer = setInterval(() => this.write({ type: 'ping' }), this.#o.pingInterval);
    };
    ws.onmessage = (e) => {
      // Any byte (a pong at least every ping interval) keeps it alive.
      if (this.#opened) this.#dog.arm(quietLimit(this.#o.pingInterval, this.#o), 'no answer to pings');
      this.#buf += typeof e.data === 'string' ? e.data : this.#decoder.decode(e.data, { stream: true });
      let i;
      while (!this.#stopped && (i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        if (line.trim()) this.#line(line);
      }
    };
    ws.onclose = (e) => this.#end({ error: `closed (${e.code})`, unauthorized: this.#unauthorized });
    ws.onerror = () => {}; // a close event follows
  }

  stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#dog.disarm();
    clearInterval(this.#pingTimer);
    if (this.#ws) {
      this.#ws.onclose = null;
      try {
        this.#ws.close();
      } catch {
        /* already closed */
      }
    }
    // A send without its answer may or may not be stored: retry it (same id).
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new LarkError('network', 'the connection closed before the answer'));
    }
    this.#pending.clear();
  }

  /** Write one command line. */
  write(obj) {
    if (!this.#ws || this.#ws.readyState !== 1) return false;
    this.#ws.send(JSON.stringify(obj) + '\n');
    return true;
  }

  /** Send a message; resolves with it when the "sent" reply comes. */
  sendMessage(fields, timeout) {
    return new Promise((resolve, reject) => {
      const id = fields.client_msg_id;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new LarkError('timeout', 'no answer to the send'));
      }, timeout);
      this.#pending.set(id, { resolve, reject, timer });
      // On the WebSocket "type" names the command; the message's own type
      // travels as msg_type (API.md "WebSocket").
      const { type: msgType, ...rest } = fields;
      const line = { type: 'send', ...rest };
      if (msgType !== undefined) line.msg_type = msgType;
      if (!this.write(line)) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new LarkError('network', 'not connected'));
      }
    });
  }

  #markOpen() {
    if (this.#opened) return;
    this.#opened = true;
    this.#dog.arm(quietLimit(this.#o.pingInterval, this.#o), 'no answer to pings');
    this.#c._opened(this);
    // Past the upgrade a WebSocket is a tunnel: no proxy buffers its frames.
    this.#c._proven(this);
  }

  #line(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn('lark: a WebSocket line that is not JSON', text.slice(0, 200));
      return;
    }
    switch (msg.type) {
      case 'hello':
      case 'pong':
        this.#markOpen();
        break;
      case 'sent': {
        this.#markOpen();
        const p = this.#pending.get(msg.client_msg_id);
        if (p) {
          clearTimeout(p.timer);
          this.#pending.delete(msg.client_msg_id);
          p.resolve(msg.message);
        }
        break;
      }
      case 'error':
        this.#error(msg);
        break;
      case 'reconnect':
        // The server drains: come back after the delay it chose (jittered).
        this.#end({ opened: true, proven: true, error: 'server restarting', retryMs: msg.retry_ms });
        break;
      default:
        this.#markOpen();
        this.#c._deliver(msg);
    }
  }

  #error(msg) {
    const e = msg.error || {};
    if (AUTH_CODES.has(e.code)) {
      this.#unauthorized = true; // the server closes the session next
      return;
    }
    const p = msg.client_msg_id !== undefined ? this.#pending.get(msg.client_msg_id) : undefined;
    if (p) {
      clearTimeout(p.timer);
      this.#pending.delete(msg.client_msg_id);
      p.reject(new LarkError(e.code || 'error', e.message, { status: e.status || 400, retryAfter: e.retry_after || 0 }));
      return;
    }
    console.warn('lark: server error on the WebSocket', e.code, e.message);
  }

  #end(info) {
    if (this.#stopped) return;
    const opened = this.#opened;
    this.stop();
    this.#c._lost(this, { opened, proven: opened, ...info });
  }
}
