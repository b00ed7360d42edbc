// fakes.mjs - a fake clock and a fake lark server for unit tests of
// www/lark.js in Node: the browser APIs lark.js uses (setTimeout and
// friends, Date.now, fetch, EventSource, WebSocket, localStorage) are
// replaced on globalThis for the length of one test and restored after.
//
// Time moves only when a test says so (clock.advance(ms)), so a test can
// walk through minutes of timeouts in milliseconds and know exactly when
// each thing happened. The server fakes the wire behaviour of the proxies
// issue 15 measured (what the stream carries, and when), not their code:
//
//   sse: 'stream'  headers, hello, backlog, live events, a ping every keepalive
//        'silent'  nothing at all (Debian's default privoxy: no headers, no bytes)
//        'headers' headers and then nothing (a proxy that buffers the body)
//        'batch'   the body in 4 KiB batches (nginx ignoring X-Accel-Buffering)
//        'refuse'  an error at once (a proxy that refuses the request)
//   ws:  'ok' (answers ping with pong; hello after auth when wsHello),
//        'refuse' (closed at once, as squid's CONNECT rule does),
//        'silent' (upgraded, then nothing)

const realSetImmediate = setImmediate;

/** Let every pending promise continuation run (no timers move). */
export async function settle(rounds = 10) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => realSetImmediate(r));
}

export class FakeClock {
  now = Date.UTC(2026, 11, 7, 12, 0, 0);
  #timers = new Map(); // id -> {at, fn, every, order}
  #nextId = 1;
  #order = 0;
  #saved = null;

  install() {
    const g = globalThis;
    this.#saved = {
      setTimeout: g.setTimeout, clearTimeout: g.clearTimeout,
      setInterval: g.setInterval, clearInterval: g.clearInterval, now: Date.now,
    };
    g.setTimeout = (fn, ms, ...args) => this.#add(fn, ms, 0, args);
    g.setInterval = (fn, ms, ...args) => this.#add(fn, ms, Math.max(1, Number(ms) || 0), args);
    g.clearTimeout = (id) => this.#timers.delete(id);
    g.clearInterval = (id) => this.#timers.delete(id);
    Date.now = () => this.now;
    return this;
  }

  uninstall() {
    if (!this.#saved) return;
    Object.assign(globalThis, {
      setTimeout: this.#saved.setTimeout, clearTimeout: this.#saved.clearTimeout,
      setInterval: this.#saved.setInterval, clearInterval: this.#saved.clearInterval,
    });
    Date.now = this.#saved.now;
    this.#saved = null;
    this.#timers.clear();
  }

  #add(fn, ms, every, args) {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.now + Math.max(0, Number(ms) || 0), fn: () => fn(...args), every, order: this.#order++ });
    return id;
  }

  /** Run every timer due within ms, in order, settling promises after each. */
  async advance(ms) {
    const target = this.now + ms;
    await settle();
    for (;;) {
      let next = null;
      let nextId = 0;
      for (const [id, t] of this.#timers)
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.order < next.order))) {
          next = t;
          nextId = id;
        }
      if (!next) break;
      this.now = next.at;
      if (next.every) {
        next.at += next.every;
        next.order = this.#order++;
      } else {
        this.#timers.delete(nextId);
      }
      next.fn();
      await settle();
    }
    this.now = target;
    await settle();
  }

  /** Advance in steps of step ms until pred() holds; returns the time taken, or throws after limit. */
  async until(pred, what, limit = 120000, step = 10) {
    const start = this.now;
    while (!pred()) {
      if (this.now - start >= limit) throw new Error(`fake clock: no ${what} within ${limit} ms`);
      await this.advance(step);
    }
    return this.now - start;
  }
}

function response(status, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  return {
    ok: status >= 200 && status < 300, status, statusText: String(status),
    headers: { get: () => null },
    json: async () => JSON.parse(text),
    text: async () => text,
  };
}

function sseFrame(name, data, id) {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${data}\n\n`;
}

/** The server and the network between: see the top of this file. */
export class FakeServer {
  sse = 'stream';
  ws = 'ok';
  wsHello = false; // answer a good WebSocket auth with {"type":"hello"}
  keepalive = 15000; // ms between SSE pings
  heartbeatStatus = 200; // what the probe hears
  heartbeatDelay = 0; // ms before the heartbeat is answered
  events = []; // the user's inbox: {seq, type, data}
  requests = []; // 'GET /v1/poll?...' etc., in order
  eventSources = []; // every FakeEventSource made
  sockets = []; // every FakeWebSocket made
  polls = new Set(); // held polls: {since, resolve}
  tickets = []; // every ticket POST /v1/tickets gave out

  constructor(clock) {
    this.clock = clock;
  }

  install() {
    const server = this;
    globalThis.fetch = (url, init = {}) => server.#fetch(String(url), init);
    globalThis.EventSource = class extends FakeEventSource {
      constructor(url) {
        super(server, url);
      }
    };
    globalThis.WebSocket = class extends FakeWebSocket {
      constructor(url) {
        super(server, url);
      }
    };
    const items = new Map();
    this.storage = {
      writes: [], // every setItem value, in order
      getItem: (k) => (items.has(k) ? items.get(k) : null),
      setItem: (k, v) => {
        this.storage.writes.push(String(v));
        items.set(k, String(v));
      },
      removeItem: (k) => items.delete(k),
    };
    globalThis.localStorage = this.storage;
    return this;
  }

  uninstall() {
    for (const k of ['fetch', 'EventSource', 'WebSocket', 'localStorage']) delete globalThis[k];
  }

  /** The transport 'auto' remembers, or null. */
  remembered() {
    const v = this.storage.getItem('lark.transport');
    return v ? JSON.parse(v).transport : null;
  }

  /** Append n messages to the inbox and hand them to every live connection. */
  publish(n = 1, body = (seq) => `message ${seq}`) {
    for (let i = 0; i < n; i++) {
      const seq = this.events.length + 1;
      this.events.push({ seq, type: 'message', data: { seq, body: body(seq) } });
    }
    for (const es of this.eventSources) es.pump();
    for (const p of [...this.polls]) if (this.events.length > p.since) p.answer();
  }

  after(since) {
    return this.events.filter((e) => e.seq > since);
  }

  async #fetch(url, init) {
    const u = new URL(url);
    const method = init.method || 'GET';
    this.requests.push(`${method} ${u.pathname}${u.search}`);
    if (u.pathname === '/v1/presence/heartbeat') {
      if (this.heartbeatDelay) await new Promise((r) => setTimeout(r, this.heartbeatDelay));
      return response(this.heartbeatStatus, this.heartbeatStatus === 200
        ? { status: 'online', interval: 15, ttl: 45 } : { error: { code: 'unavailable', message: 'down' } });
    }
    if (u.pathname === '/v1/ack') return response(200, { acked: JSON.parse(init.body).seq });
    if (u.pathname === '/v1/tickets' && method === 'POST') {
      this.tickets.push(`ticket-${this.tickets.length + 1}`);
      return response(201, { ticket: this.tickets.at(-1), expires_at: new Date(this.clock.now + 60000).toISOString() });
    }
    if (u.pathname === '/v1/poll') return this.#poll(u, init.signal);
    return response(404, { error: { code: 'not_found', message: u.pathname } });
  }

  #poll(u, signal) {
    const since = Number(u.searchParams.get('since') || 0);
    const timeout = Number(u.searchParams.get('timeout') || 25) * 1000;
    return new Promise((resolve, reject) => {
      const p = { since };
      const done = () => {
        clearTimeout(p.timer);
        this.polls.delete(p);
      };
      p.answer = () => {
        done();
        const events = this.after(since);
        resolve(response(200, { events, next: events.length ? events[events.length - 1].seq : since }));
      };
      if (this.after(since).length || timeout === 0) return p.answer();
      p.timer = setTimeout(p.answer, timeout);
      this.polls.add(p);
      if (signal)
        signal.addEventListener('abort', () => {
          done();
          reject(new Error('aborted'));
        });
    });
  }
}

/** EventSource as lark.js uses it: addEventListener, onerror, close. */
class FakeEventSource {
  #listeners = new Map();
  #pending = ''; // bytes a 'batch' proxy holds
  #sent = 0; // seq of the last event written
  #pinger = null;
  closed = false;
  onerror = null;
  onopen = null;

  constructor(server, url) {
    this.server = server;
    this.url = url;
    const q = new URL(url).searchParams;
    this.#sent = Number(q.get('since') || 0);
    this.mode = server.sse;
    server.eventSources.push(this);
    setTimeout(() => this.#begin(), 5); // a few ms of network
  }

  addEventListener(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, []);
    this.#listeners.get(type).push(fn);
  }

  close() {
    this.closed = true;
    clearInterval(this.#pinger);
  }

  /** Stop writing anything, pings included (the network went away). */
  freeze() {
    clearInterval(this.#pinger);
    this.mode = 'silent';
  }

  #begin() {
    if (this.closed) return;
    if (this.mode === 'refuse') {
      if (this.onerror) this.onerror(new Error('refused'));
      return;
    }
    if (this.mode === 'silent') return;
    if (this.onopen) this.onopen();
    if (this.mode === 'headers') return;
    this.#write(sseFrame('hello', '{}'));
    this.pump();
    this.#pinger = setInterval(() => this.#write(sseFrame('ping', '{}')), this.server.keepalive);
  }

  /** Write the events this stream has not written yet. */
  pump() {
    if (this.closed || !['stream', 'batch'].includes(this.mode)) return;
    for (const e of this.server.after(this.#sent)) {
      this.#write(sseFrame(e.type, JSON.stringify(e), e.seq));
      this.#sent = e.seq;
    }
  }

  #write(bytes) {
    if (this.closed || this.mode === 'silent') return;
    this.#pending += bytes;
    if (this.mode === 'batch' && this.#pending.length < 4096) return;
    const chunk = this.#pending;
    this.#pending = '';
    for (const block of chunk.split('\n\n')) {
      const m = /event: (\w+)\ndata: (.*)$/s.exec(block);
      if (m) for (const fn of this.#listeners.get(m[1]) || []) fn({ type: m[1], data: m[2] });
    }
  }
}

/** WebSocket as lark.js uses it: send, close, on* handlers, readyState. */
class FakeWebSocket {
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  lines = []; // what the client wrote

  constructor(server, url) {
    this.server = server;
    this.url = url;
    this.mode = server.ws;
    server.sockets.push(this);
    setTimeout(() => this.#begin(), 5);
  }

  #begin() {
    if (this.readyState === 3) return;
    if (this.mode === 'refuse') return this.#closed(1006);
    this.readyState = 1;
    if (this.onopen) this.onopen();
  }

  #closed(code) {
    this.readyState = 3;
    if (this.onclose) this.onclose({ code });
  }

  send(text) {
    const line = JSON.parse(text);
    this.lines.push(line);
    if (this.mode !== 'ok') return;
    const reply = (obj) => setTimeout(() => {
      if (this.readyState === 1 && this.onmessage) this.onmessage({ data: JSON.stringify(obj) + '\n' });
    }, 1);
    if (line.type === 'auth' && this.server.wsHello) reply({ type: 'hello' });
    if (line.type === 'ping') reply({ type: 'pong' });
  }

  close() {
    this.readyState = 3;
  }
}
