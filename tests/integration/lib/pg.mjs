// pg.mjs - a throwaway PostgreSQL cluster for the tests.
//
// A cluster lives in its own temporary directory (/tmp/lark-pg-XXXXXX):
// data/ made by initdb, its unix socket, postgres.log and an owner file
// with the pid of the test process. initdb and pg_ctl refuse to run as
// root, so as root they run as the `postgres` user (`runuser -u postgres
// --`, DESIGN.md) and the directory is handed to that user; as anyone
// else they run as the caller.
//
// The cluster is tuned for tests, not for durability across machine
// crashes: fsync is off (nothing here survives a power cut anyway, and four
// engineers share this disk). A clean `pg_ctl restart -m fast` or `stop -m
// immediate` still loses nothing committed: the WAL is in the page cache.
//
// Every wait is bounded (pg_ctl -w -t, execFile timeouts). A cluster is
// removed by destroy(); if the process ends first (a failed test, Ctrl-C),
// an exit hook stops the server and removes the directory, and the next
// cluster started on this machine sweeps any directory whose owner process
// is gone (a test run that was SIGKILLed).

import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'lark-pg-';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** The directory holding initdb and pg_ctl: LARK_PG_BIN, else Debian's newest, else PATH. */
export function pgBin() {
  if (process.env.LARK_PG_BIN) return process.env.LARK_PG_BIN;
  const base = '/usr/lib/postgresql';
  let versions = [];
  try {
    versions = fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin/initdb')));
  } catch { /* not Debian's layout */ }
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(base, versions[0], 'bin') : '';
}

/** Is a PostgreSQL server installed here (initdb found)? */
export function pgAvailable() {
  const bin = pgBin();
  if (bin) return fs.existsSync(path.join(bin, 'initdb'));
  return spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).status === 0;
}

const tool = (name) => (pgBin() ? path.join(pgBin(), name) : name);

/** argv for a server tool run as the cluster's owner. */
function asOwner(argv) {
  return isRoot ? ['runuser', '-u', 'postgres', '--', ...argv] : argv;
}

/** Run argv (bounded); resolves stdout, rejects with stderr in the message. */
function run(argv, { timeout = 60000, cwd, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0], argv.slice(1), { timeout, cwd, encoding: 'utf8', killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err) {
          err.message = `${argv.join(' ')} failed (${err.killed ? `killed after ${timeout} ms` : `exit ${err.code}`}):\n` +
            `${stderr}${stdout}`.trim();
          reject(err);
        } else resolve(stdout);
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

export async function freeTcpPort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Stop and remove clusters whose owning test process no longer exists. */
export function sweepLeftovers() {
  let names = [];
  try {
    names = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(PREFIX));
  } catch { return; }
  for (const n of names) {
    const dir = path.join(os.tmpdir(), n);
    let owner;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
    } catch { continue; } // not ours, or being set up right now
    if (!owner || pidAlive(owner)) continue;
    stopSync(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Stop a cluster's server at once, synchronously (exit hooks, sweeps). */
function stopSync(dir) {
  const data = path.join(dir, 'data');
  if (!fs.existsSync(path.join(data, 'postmaster.pid'))) return;
  const argv = asOwner([tool('pg_ctl'), '-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop']);
  const r = spawnSync(argv[0], argv.slice(1), { cwd: dir, timeout: 15000, stdio: 'ignore' });
  if (r.status !== 0) {
    // pg_ctl could not do it (e.g. it timed out): kill the postmaster itself
    try {
      const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid) process.kill(pid, 'SIGQUIT');
    } catch { /* already gone */ }
  }
}

/** /proc/PID/stat ("pid (comm) state ppid ..."), or '' when it is gone. */
function readStat(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
}

/** The pids whose parent is pid (from /proc). */
function childrenOf(pid) {
  const out = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const stat = readStat(n); // comm may hold spaces and parentheses
    if (stat && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(n));
  }
  return out;
}

const live = new Set();
process.on('exit', () => {
  for (const c of live) c.destroySync();
});

export class PgCluster {
  /**
   * opts:
   *   listen   addresses for TCP ('' = unix socket only, the default)
   *   port     TCP port; 0 = a free port on `listen` (or 5432 when unix only:
   *            the socket's name carries the port, and the directory is ours)
   *   hba      extra pg_hba.conf lines (e.g. "host all all 10.0.0.0/24 trust")
   *   wrap     argv prefix for the server tools, e.g. ['ip', 'netns', 'exec', ns]
   *   settings extra postgresql.conf lines
   */
  constructor({ listen = '', port = 0, hba = [], wrap = [], settings = [] } = {}) {
    this.listen = listen;
    this.fixedPort = port;
    this.hba = hba;
    this.wrap = wrap;
    this.settings = settings;
    this.dir = null;
    this.port = null;
    this.dbs = 0;
  }

  get data() { return path.join(this.dir, 'data'); }
  get log() { return path.join(this.dir, 'postgres.log'); }

  /** Create the cluster and start it (bounded); returns this. */
  async start() {
    sweepLeftovers();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
    fs.writeFileSync(path.join(this.dir, 'owner.pid'), String(process.pid));
    live.add(this);
    fs.chmodSync(this.dir, 0o700);
    if (isRoot) await run(['chown', 'postgres:', this.dir]);
    await run(asOwner([tool('initdb'), '-D', this.data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8',
      '--locale=C', '--no-sync', '--no-instructions']), { cwd: this.dir, timeout: 120000 });
    fs.appendFileSync(path.join(this.data, 'pg_hba.conf'), this.hba.map((l) => l + '\n').join(''));
    for (let attempt = 0; ; attempt++) {
      this.port = this.fixedPort || (this.listen ? await freeTcpPort(this.listen.split(',')[0]) : 5432);
      this.writeConf();
      try {
        await this.pgctl(['start']);
        return this;
      } catch (e) {
        // another process took the free port between our probe and the bind
        const raced = !this.fixedPort && this.listen && /could not bind|Address already in use/
          .test(fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '');
        if (!raced || attempt >= 4) throw new Error(`${e.message}\n--- postgres.log ---\n${this.logTail()}`);
      }
    }
  }

  writeConf() {
    const conf = [
      '# written by tests/integration/lib/pg.mjs',
      `listen_addresses = '${this.listen}'`,
      `port = ${this.port}`,
      `unix_socket_directories = '${this.dir}'`,
      // Each larkd holds a connection per worker thread plus its LISTEN
      // connection; a test file may run several larkd at once.
      'max_connections = 400',
      'shared_buffers = 32MB',
      'fsync = off',
      'full_page_writes = off',
      'log_min_messages = warning',
      'log_connections = off',
      ...this.settings,
    ];
    fs.writeFileSync(path.join(this.data, 'lark-test.conf'), conf.join('\n') + '\n');
    const main = path.join(this.data, 'postgresql.conf');
    if (!fs.readFileSync(main, 'utf8').includes("include = 'lark-test.conf'"))
      fs.appendFileSync(main, "\ninclude = 'lark-test.conf'\n");
  }

  /** pg_ctl with a bounded wait (-w -t 30) and our log file. */
  pgctl(args) {
    return run([...this.wrap, ...asOwner([tool('pg_ctl'), '-D', this.data, '-l', this.log, '-w', '-t', '30', ...args])],
      { cwd: this.dir, timeout: 45000 });
  }

  /** Run SQL with psql over the unix socket; resolves psql's output (unaligned, tuples only). */
  psql(sql, db = 'postgres') {
    return run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.dir, '-p', String(this.port),
      '-U', 'postgres', '-d', db, '-c', sql], { timeout: 30000 });
  }

  /** Drop a database, disconnecting whoever still uses it. */
  async dropDb(db) {
    await this.psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  }

  /** Create a fresh database; resolves its name. */
  async createDb(name) {
    const db = name || `lark_${++this.dbs}_${crypto.randomBytes(3).toString('hex')}`;
    await this.psql(`CREATE DATABASE "${db}"`);
    return db;
  }

  /**
   * A libpq connection URI for larkd's LARK_DB. host: an address for TCP;
   * unset, the unix socket directory.
   */
  uri(db, { host } = {}) {
    if (host) return `postgresql://postgres@${host}:${this.port}/${db}`;
    return `postgresql:///${db}?host=${this.dir}&port=${this.port}&user=postgres`;
  }

  /**
   * A streaming standby of this (running, listening) cluster: a new
   * cluster made by pg_basebackup -R from it - run under opts.wrap, so
   * from another network namespace it copies over the network, as a
   * standby in another zone would - and started. The base backup copies
   * the primary's postgresql.conf; lark-test.conf is written anew with
   * opts (listen, port, wrap, settings), so the primary's settings (e.g.
   * synchronous_standby_names) are not inherited. from: the address the
   * standby reaches the primary on (default: its first listen address).
   * The primary's pg_hba.conf must allow replication from there.
   */
  async standby({ listen = '', port = 0, wrap = [], settings = [], from } = {}) {
    const host = from || this.listen.split(',')[0];
    if (!host) throw new Error('standby(): the primary must listen on TCP (listen) or name from');
    const s = new PgCluster({ listen, port, wrap, settings });
    sweepLeftovers();
    s.dir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
    fs.writeFileSync(path.join(s.dir, 'owner.pid'), String(process.pid));
    live.add(s);
    fs.chmodSync(s.dir, 0o700);
    if (isRoot) await run(['chown', 'postgres:', s.dir]);
    await run([...wrap, ...asOwner([tool('pg_basebackup'), '-D', s.data, '-R', '-X', 'stream', '-c', 'fast',
      '--no-sync', '-h', host, '-p', String(this.port), '-U', 'postgres'])], { cwd: s.dir, timeout: 120000 });
    s.port = port || (listen ? await freeTcpPort(listen.split(',')[0]) : 5432);
    s.writeConf();
    try {
      await s.pgctl(['start']);
    } catch (e) {
      throw new Error(`${e.message}\n--- standby postgres.log ---\n${s.logTail()}`);
    }
    return s;
  }

  /** The postmaster's pid (from postmaster.pid), or 0 when it is not running. */
  postmasterPid() {
    try {
      return Number(fs.readFileSync(path.join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]) || 0;
    } catch {
      return 0;
    }
  }

  /**
   * kill -9 of the server: the postmaster and all its children at once,
   * as when its machine dies (nothing is flushed, no session is told).
   * Resolves the pids killed once they are all gone (bounded).
   */
  async kill9() {
    const pm = this.postmasterPid();
    if (!pm) return [];
    const pids = [pm, ...childrenOf(pm)];
    for (const p of pids) {
      try { process.kill(p, 'SIGKILL'); } catch { /* gone already */ }
    }
    // gone, or a zombie nobody has reaped yet (a container's init may be slow to)
    const gone = (p) => !pidAlive(p) || /^\S+ \(.*\) Z/.test(readStat(p));
    const end = Date.now() + 10000;
    while (!pids.every(gone) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return pids;
  }

  /** pg_ctl promote (waits until the standby takes writes, bounded). */
  async promote() {
    await this.pgctl(['promote']);
  }

  /** pg_ctl restart -m MODE (fast: sessions are disconnected, a checkpoint is written). */
  async restart(mode = 'fast') {
    await this.pgctl(['restart', '-m', mode]);
  }

  async stop(mode = 'fast') {
    await this.pgctl(['stop', '-m', mode]);
  }

  async startAgain() {
    await this.pgctl(['start']);
  }

  logTail(n = 3000) {
    try {
      return fs.readFileSync(this.log, 'utf8').slice(-n);
    } catch {
      return '';
    }
  }

  /** Stop the server (immediate) and remove the directory. */
  async destroy() {
    if (!this.dir) return;
    try {
      if (fs.existsSync(path.join(this.data, 'postmaster.pid'))) await this.pgctl(['stop', '-m', 'immediate']);
    } catch {
      stopSync(this.dir);
    }
    this.remove();
  }

  destroySync() {
    if (!this.dir) return;
    stopSync(this.dir);
    this.remove();
  }

  remove() {
    live.delete(this);
    if (!process.env.LARK_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/**
 * A server someone else runs (LARK_TEST_PGHOST: a socket directory or a
 * host name; LARK_TEST_PGPORT, default 5432; user postgres, trust): the
 * same createDb/dropDb/uri/psql, and nothing to start or remove.
 */
export class ExternalCluster {
  constructor(host, port = 5432) {
    this.host = host;
    this.port = Number(port);
    this.dbs = 0;
  }

  psql(sql, db = 'postgres') {
    return run(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.host, '-p', String(this.port),
      '-U', 'postgres', '-d', db, '-c', sql], { timeout: 30000 });
  }

  async createDb(name) {
    const db = name || `lark_${process.pid}_${++this.dbs}_${crypto.randomBytes(3).toString('hex')}`;
    await this.psql(`CREATE DATABASE "${db}"`);
    return db;
  }

  dropDb(db) { return PgCluster.prototype.dropDb.call(this, db); }

  uri(db) {
    if (this.host.startsWith('/')) return `postgresql:///${db}?host=${this.host}&port=${this.port}&user=postgres`;
    return `postgresql://postgres@${this.host}:${this.port}/${db}`;
  }

  async destroy() { /* not ours */ }
}

// ---- the cluster shared by every Stack of a postgres run ------------------

let shared = null;

/**
 * The run's shared cluster, started on first use (unix socket + 127.0.0.1),
 * or the server at LARK_TEST_PGHOST when that is set.
 */
export function sharedCluster() {
  if (!shared) {
    shared = process.env.LARK_TEST_PGHOST
      ? Promise.resolve(new ExternalCluster(process.env.LARK_TEST_PGHOST, process.env.LARK_TEST_PGPORT || 5432))
      : new PgCluster({ listen: '127.0.0.1' }).start();
  }
  return shared;
}

/** Stop and remove the shared cluster, if one was started. */
export async function stopSharedCluster() {
  if (!shared) return;
  const c = await shared.catch(() => null);
  shared = null;
  if (c) await c.destroy();
}
