// stack.mjs - start the real thing for a test: larkd and lighttpd on a free
// port, with their own temporary data directory.
//
// Stack is one larkd behind one lighttpd, as `make run` starts them. Its
// parts, Larkd and Lighttpd, are exported for tests that assemble other
// shapes (two larkd behind one lighttpd, hosts in network namespaces).
//
// The store: LARK_TEST_BACKEND=sqlite (default) gives each Stack the
// SQLite database in its data directory; LARK_TEST_BACKEND=postgres gives
// each Stack a fresh database in the run's shared PostgreSQL cluster
// (lib/pg.mjs; or in the server at LARK_TEST_PGHOST/LARK_TEST_PGPORT) and
// points larkd at it with LARK_DB=postgresql://... The database is dropped
// when the Stack stops cleanly.
//
// Every wait is bounded; stop() sends SIGTERM (so a sanitizer build runs its
// leak check at exit) and fails the test if any server's stderr holds a
// sanitizer report, the way redis's tests/support/server.tcl does.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedCluster } from './pg.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const top = path.resolve(here, '../../..');
export const build = path.resolve(top, process.env.LARK_BUILD || 'build');
export const secret = 'integration-test-secret-0123456789';
/** core/config.h CONFIG_DEV_SECRET: the only secret dev_tokens = 1 runs with. */
export const devSecret = 'lark-dev-secret-do-not-use-in-production';

/**
 * The store the suites run on: 'sqlite' or 'postgres' (LARK_TEST_BACKEND;
 * LARK_TEST_PGHOST alone, an existing server to use, implies postgres).
 */
export const backend = process.env.LARK_TEST_BACKEND || (process.env.LARK_TEST_PGHOST ? 'postgres' : 'sqlite');
if (!['sqlite', 'postgres'].includes(backend)) throw new Error(`LARK_TEST_BACKEND=${backend}: use sqlite or postgres`);

export const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer|ERROR SUMMARY: [1-9]/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait until fn() is truthy, polling every step ms, at most limit ms. */
export async function waitFor(fn, what, limit = 10000, step = 25) {
  const end = Date.now() + limit;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await sleep(step);
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

export function waitExit(child, limit) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), limit);
    child.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

/** Resolves true once host:port accepts a TCP connection, false on refusal. */
function tcpUp(port, host) {
  return new Promise((res) => {
    const c = net.connect(port, host, () => { c.destroy(); res(true); });
    c.on('error', () => res(false));
  });
}

const tmpDirs = new Set();

/**
 * A temporary directory for a test's servers: removed by whoever finishes
 * with it, and at the latest when the process exits (a failed test, Ctrl-C),
 * unless LARK_KEEP_TMP is set.
 */
export function tmpDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(dir);
  return dir;
}

/** Remove a directory made by tmpDir (kept with LARK_KEEP_TMP). */
export function removeTmpDir(dir) {
  tmpDirs.delete(dir);
  if (!process.env.LARK_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
}

process.on('exit', () => {
  for (const d of [...tmpDirs]) removeTmpDir(d);
});

const live = new Set();

/** Have killAll stop child too (helpers that spawn other daemons). */
export function track(child) {
  live.add(child);
}

/** Kill whatever a failed test left running (the runner calls this). */
export function killAll() {
  for (const child of live) if (!exited(child)) child.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAll);

/** Spawn argv (with an optional argv prefix, e.g. ip netns exec) logging to file. */
function spawnLogged(wrap, argv, env, logFile) {
  const out = fs.openSync(logFile, 'a');
  const full = [...wrap, ...argv];
  const child = spawn(full[0], full.slice(1), { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function readTail(f, n) {
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-n) : '';
}

/**
 * One larkd process. dir: its LARK_DATA (sockets and SQLite database
 * there); env: extra LARK_* settings; name: file prefix, so that several
 * larkd can share a directory; wrap: argv prefix (ip netns exec NS).
 */
export class Larkd {
  constructor({ dir, env = {}, name = 'larkd', wrap = [] }) {
    this.dir = dir;
    this.env = env;
    this.name = name;
    this.wrap = wrap;
    this.sock = path.join(dir, `${name}.sock`);
    this.wsSock = path.join(dir, `${name}-ws.sock`);
    this.log = path.join(dir, `${name}.stderr`);
    this.proc = null;
  }

  /** The environment larkd gets; a key of env set to null is left out. */
  fullEnv() {
    const env = {
      ...process.env,
      LARK_DATA: this.dir,
      LARK_LISTEN: this.sock,
      LARK_WS_LISTEN: this.wsSock,
      LARK_JWT_SECRET: secret,
      LARK_DRAIN_GRACE_MS: '200',
      LARK_LOG_LEVEL: 'info',
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      ...this.env,
    };
    for (const k of Object.keys(env)) if (env[k] === null) delete env[k];
    return env;
  }

  get pid() { return this.proc && this.proc.pid; }
  running() { return !!this.proc && !exited(this.proc); }

  async start() {
    try { fs.unlinkSync(this.sock); } catch { /* none yet */ }
    // LARK_LARKD_WRAPPER: run larkd under e.g. valgrind (tools/valgrind.sh)
    const tool = process.env.LARK_LARKD_WRAPPER ? process.env.LARK_LARKD_WRAPPER.split(' ') : [];
    this.proc = spawnLogged(this.wrap, [...tool, path.join(build, 'larkd')], this.fullEnv(), this.log);
    const proc = this.proc;
    await waitFor(() => fs.existsSync(this.sock) || exited(proc), `${this.name} socket`, 20000);
    if (exited(proc)) throw new Error(`${this.name} exited at start:\n${this.logs()}`);
    // the socket file appears at bind(); wait until it accepts
    await waitFor(() => new Promise((res) => {
      const c = net.connect(this.sock, () => { c.destroy(); res(true); });
      c.on('error', () => res(false));
    }), `${this.name} accepting`, 10000);
    return this;
  }

  kill(signal) {
    if (this.running()) this.proc.kill(signal);
  }

  /** Send signal (SIGTERM: drain) and wait for the exit; returns the exit code. */
  async stop(signal = 'SIGTERM') {
    if (!this.proc || exited(this.proc)) return this.proc ? this.proc.exitCode : 0;
    this.proc.kill(signal);
    if (!(await waitExit(this.proc, 20000))) {
      this.proc.kill('SIGKILL');
      await waitExit(this.proc, 5000);
      throw new Error(`${this.name} did not stop within 20 s of ${signal}`);
    }
    return this.proc.exitCode;
  }

  logs() {
    return `--- ${this.name} ---\n${readTail(this.log, 4000)}\n`;
  }

  sanitizerReport() {
    const text = fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '';
    const m = text.match(SANITIZER);
    return m ? text.slice(Math.max(0, m.index - 200), m.index + 3000) : null;
  }

  /** After stop(): throws if a sanitizer spoke or the exit was not clean. */
  check(code) {
    const report = this.sanitizerReport();
    if (report) throw new Error(`sanitizer report in ${this.name} stderr:\n${report}`);
    if (code !== 0 && code !== null) throw new Error(`${this.name} exited with ${code}:\n${this.logs()}`);
  }
}

/**
 * One lighttpd. conf: the configuration file (conf/lighttpd.conf by
 * default); env: the variables it reads (PORT is set here); bind/port: a
 * fixed address to wait on (port 0: a free port on 127.0.0.1, retried if
 * another process takes it first); wrap: argv prefix.
 */
export class Lighttpd {
  constructor({ dir, conf = path.join(top, 'conf/lighttpd.conf'), env = {}, host = '127.0.0.1', port = 0, wrap = [], name = 'lighttpd' }) {
    this.dir = dir;
    this.conf = conf;
    this.env = env;
    this.host = host;
    this.fixedPort = port;
    this.wrap = wrap;
    this.log = path.join(dir, `${name}.stderr`);
    this.proc = null;
  }

  get url() { return `http://${this.host}:${this.port}`; }

  async start() {
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = this.fixedPort || await freePort();
      this.proc = spawnLogged(this.wrap, ['lighttpd', '-D', '-f', this.conf], {
        ...process.env,
        PORT: String(this.port),
        LARK_WWW: path.join(top, 'www'),
        LARK_LOGDIR: this.dir,
        LARK_CONF: path.join(top, 'conf'),
        // larkd's media_dir when it shares this directory (Stack); lighttpd
        // only sends files from under it (x-sendfile-docroot)
        LARK_MEDIA_DIR: path.join(this.dir, 'media'),
        ...this.env,
      }, this.log);
      const proc = this.proc;
      const up = await waitFor(async () => {
        if (exited(proc)) return 'exited';
        return (await tcpUp(this.port, this.host)) && 'up';
      }, `lighttpd on ${this.host}:${this.port}`, 10000);
      if (up === 'up') return this;
      // another process took the port between our probe and lighttpd's bind
      if (this.fixedPort) break;
    }
    throw new Error(`lighttpd would not start:\n${this.logs()}`);
  }

  async stop() {
    if (this.proc && !exited(this.proc)) {
      this.proc.kill('SIGTERM');
      if (!(await waitExit(this.proc, 5000))) this.proc.kill('SIGKILL');
    }
  }

  logs() {
    return `--- lighttpd ---\n${readTail(this.log, 2000)}${readTail(path.join(this.dir, 'lighttpd.error.log'), 2000)}`;
  }
}

/**
 * A fresh database for one test stack: { LARK_DB } for larkd (postgres),
 * or {} (sqlite). drop(): remove it again (postgres; a no-op for sqlite).
 */
export async function freshDb(which = backend) {
  if (which !== 'postgres') return {};
  const cluster = await sharedCluster();
  const db = await cluster.createDb();
  const env = { LARK_DB: cluster.uri(db) };
  Object.defineProperty(env, 'drop', { value: () => cluster.dropDb(db) });
  return env;
}

export class Stack {
  /**
   * env: extra LARK_* settings for larkd. opts.backend: 'sqlite' or
   * 'postgres' (default: LARK_TEST_BACKEND); an explicit LARK_DB in env wins.
   */
  constructor(env = {}, { backend: which = backend } = {}) {
    this.env = env;
    this.backend = which;
    this.dir = tmpDir('lark-it-');
    this.larkdLog = path.join(this.dir, 'larkd.stderr');
    this.daemon = null;
    this.web = null;
  }

  /** The larkd ChildProcess (tests signal it directly). */
  get larkd() { return this.daemon && this.daemon.proc; }
  get lighttpd() { return this.web && this.web.proc; }

  larkdEnv() { return this.daemon.fullEnv(); }

  async startLarkd() {
    if (!this.daemon) {
      const db = 'LARK_DB' in this.env ? {} : await freshDb(this.backend);
      this.dropDb = db.drop;
      this.daemon = new Larkd({ dir: this.dir, env: { ...db, ...this.env } });
    }
    await this.daemon.start();
  }

  async startLighttpd() {
    this.web = new Lighttpd({
      dir: this.dir,
      env: { LARK_SOCKET: this.daemon.sock, LARK_WS_SOCKET: this.daemon.wsSock },
    });
    await this.web.start();
    this.port = this.web.port;
  }

  async start() {
    await this.startLarkd();
    await this.startLighttpd();
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** SIGTERM larkd and wait for it to drain and exit; returns its exit code. */
  async stopLarkd(signal = 'SIGTERM') {
    return this.daemon ? this.daemon.stop(signal) : 0;
  }

  async restartLarkd() {
    await this.startLarkd();
  }

  logs() {
    return (this.daemon ? this.daemon.logs() : '') + (this.web ? this.web.logs() : '');
  }

  sanitizerReport() {
    return this.daemon ? this.daemon.sanitizerReport() : null;
  }

  /** Stop everything; throws if larkd failed to exit cleanly or a sanitizer spoke. */
  async stop() {
    let code = 0;
    try {
      code = await this.stopLarkd();
    } finally {
      if (this.web) await this.web.stop();
    }
    if (this.daemon) this.daemon.check(code);
    if (process.env.LARK_KEEP_TMP) return;
    if (this.dropDb) await this.dropDb();
    removeTmpDir(this.dir);
  }
}
