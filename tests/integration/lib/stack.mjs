// stack.mjs - start the real thing for a test: larkd and lighttpd on a free
// port, with their own temporary data directory.
//
// Every wait is bounded; stop() sends SIGTERM (so a sanitizer build runs its
// leak check at exit) and fails the test if any server's stderr holds a
// sanitizer report, the way redis's tests/support/server.tcl does.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const top = path.resolve(here, '../../..');
export const build = path.resolve(top, process.env.LARK_BUILD || 'build');
export const secret = 'integration-test-secret-0123456789';
/** core/config.h CONFIG_DEV_SECRET: the only secret dev_tokens = 1 runs with. */
export const devSecret = 'lark-dev-secret-do-not-use-in-production';

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer|ERROR SUMMARY: [1-9]/;

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

async function freePort() {
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

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, limit) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), limit);
    child.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

const live = new Set();

/** Kill whatever a failed test left running (the runner calls this). */
export function killAll() {
  for (const child of live) if (!exited(child)) child.kill('SIGKILL');
  live.clear();
}
process.on('exit', killAll);

export class Stack {
  /** env: extra LARK_* settings for larkd. */
  constructor(env = {}) {
    this.env = env;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lark-it-'));
    // LARK_TEST_PGHOST/PGPORT: run on a fresh PostgreSQL database instead of SQLite
    if (process.env.LARK_TEST_PGHOST && !env.LARK_DB) {
      this.pgdb = `lark_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
      this.psql(`CREATE DATABASE ${this.pgdb}`);
      this.env = { ...env, LARK_DB: `postgresql:///${this.pgdb}?host=${process.env.LARK_TEST_PGHOST}` +
        `&port=${process.env.LARK_TEST_PGPORT || 5432}&user=postgres` };
    }
    this.larkdLog = path.join(this.dir, 'larkd.stderr');
    this.lighttpdLog = path.join(this.dir, 'lighttpd.stderr');
    this.larkd = null;
    this.lighttpd = null;
  }

  psql(sql) {
    const r = spawnSync('psql', ['-h', process.env.LARK_TEST_PGHOST, '-p', process.env.LARK_TEST_PGPORT || '5432',
      '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 30000 });
    if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
  }

  larkdEnv() {
    return {
      ...process.env,
      LARK_DATA: this.dir,
      LARK_LISTEN: path.join(this.dir, 'larkd.sock'),
      LARK_WS_LISTEN: path.join(this.dir, 'larkd-ws.sock'),
      LARK_JWT_SECRET: secret,
      LARK_DRAIN_GRACE_MS: '200',
      LARK_LOG_LEVEL: 'info',
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      ...this.env,
    };
  }

  async startLarkd() {
    const sock = path.join(this.dir, 'larkd.sock');
    try { fs.unlinkSync(sock); } catch { /* none yet */ }
    const out = fs.openSync(this.larkdLog, 'a');
    // LARK_LARKD_WRAPPER: run larkd under e.g. valgrind (tools/valgrind.sh)
    const wrap = process.env.LARK_LARKD_WRAPPER ? process.env.LARK_LARKD_WRAPPER.split(' ') : [];
    const argv = [...wrap, path.join(build, 'larkd')];
    this.larkd = spawn(argv[0], argv.slice(1), {
      env: this.larkdEnv(), stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    live.add(this.larkd);
    await waitFor(() => fs.existsSync(sock) || exited(this.larkd), 'larkd socket', 20000);
    if (exited(this.larkd)) throw new Error(`larkd exited at start:\n${this.logs()}`);
    // the socket file appears at bind(); wait until it accepts
    await waitFor(() => new Promise((res) => {
      const c = net.connect(sock, () => { c.destroy(); res(true); });
      c.on('error', () => res(false));
    }), 'larkd accepting', 10000);
  }

  async startLighttpd() {
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort();
      const out = fs.openSync(this.lighttpdLog, 'a');
      this.lighttpd = spawn('lighttpd', ['-D', '-f', path.join(top, 'conf/lighttpd.conf')], {
        env: {
          ...process.env,
          PORT: String(this.port),
          LARK_SOCKET: path.join(this.dir, 'larkd.sock'),
          LARK_WS_SOCKET: path.join(this.dir, 'larkd-ws.sock'),
          LARK_WWW: path.join(top, 'www'),
          LARK_LOGDIR: this.dir,
          LARK_CONF: path.join(top, 'conf'),
        },
        stdio: ['ignore', out, out],
      });
      fs.closeSync(out);
      live.add(this.lighttpd);
      const up = await waitFor(async () => {
        if (exited(this.lighttpd)) return 'exited';
        return new Promise((res) => {
          const c = net.connect(this.port, '127.0.0.1', () => { c.destroy(); res('up'); });
          c.on('error', () => res(false));
        });
      }, 'lighttpd port', 10000);
      if (up === 'up') return;
      // another process took the port between our probe and lighttpd's bind
    }
    throw new Error(`lighttpd would not start:\n${this.logs()}`);
  }

  async start() {
    await this.startLarkd();
    await this.startLighttpd();
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** SIGTERM larkd and wait for it to drain and exit; returns its exit code. */
  async stopLarkd(signal = 'SIGTERM') {
    if (!this.larkd || exited(this.larkd)) return this.larkd ? this.larkd.exitCode : 0;
    this.larkd.kill(signal);
    if (!(await waitExit(this.larkd, 20000))) {
      this.larkd.kill('SIGKILL');
      await waitExit(this.larkd, 5000);
      throw new Error('larkd did not stop within 20 s of ' + signal);
    }
    return this.larkd.exitCode;
  }

  async restartLarkd() {
    await this.startLarkd();
  }

  logs() {
    const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
    return `--- larkd ---\n${read(this.larkdLog).slice(-4000)}\n--- lighttpd ---\n` +
      `${read(this.lighttpdLog).slice(-2000)}${read(path.join(this.dir, 'lighttpd.error.log')).slice(-2000)}`;
  }

  sanitizerReport() {
    const text = fs.existsSync(this.larkdLog) ? fs.readFileSync(this.larkdLog, 'utf8') : '';
    const m = text.match(SANITIZER);
    return m ? text.slice(Math.max(0, m.index - 200), m.index + 3000) : null;
  }

  /** Stop everything; throws if larkd failed to exit cleanly or a sanitizer spoke. */
  async stop() {
    let code = 0;
    try {
      code = await this.stopLarkd();
    } finally {
      if (this.lighttpd && !exited(this.lighttpd)) {
        this.lighttpd.kill('SIGTERM');
        if (!(await waitExit(this.lighttpd, 5000))) this.lighttpd.kill('SIGKILL');
      }
    }
    const report = this.sanitizerReport();
    if (report) throw new Error(`sanitizer report in larkd stderr:\n${report}`);
    if (code !== 0 && code !== null) throw new Error(`larkd exited with ${code}:\n${this.logs()}`);
    if (this.pgdb && !process.env.LARK_KEEP_TMP) this.psql(`DROP DATABASE IF EXISTS ${this.pgdb} WITH (FORCE)`);
    if (!process.env.LARK_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
