// patroni.mjs - a Patroni cluster for the tests (issue 17): Debian's
// patroni (3.0) on each database host of lib/zones.mjs, with a one-node
// etcd (Debian's etcd-server, 3.4, v3 API) on a host of its own, so that
// losing either database zone leaves the other a quorum to promote in.
//
//   Etcd          etcd on one host: client :2379, peer :2380, data in a
//                 temporary directory
//   PatroniNode   patroni on one host, run as the postgres user (it runs
//                 initdb, pg_ctl and pg_basebackup itself): PostgreSQL on
//                 :5432, the REST API on :8008, its directory under a
//                 temporary one. The first node started bootstraps the
//                 cluster; the next ones clone it (pg_basebackup)
//
// The dynamic configuration is the test's: synchronous_mode (Patroni
// names the streaming standby in synchronous_standby_names, and promotes
// only a standby that was synchronous), and short timings so that a
// failover takes seconds, not the default ~30 s: ttl 10, loop_wait 1,
// retry_timeout 3 (Patroni needs loop_wait + 2 x retry_timeout <= ttl).
// LARK_TEST_PATRONI_TIMING="ttl,loop_wait,retry_timeout" sets others
// ("30,10,10": Patroni's defaults; tools/failover-figures.sh measures
// both). docs/DEPLOY.md "Two zones" gives the settings for production.
//
// Every wait is bounded; stop() ends each process with SIGTERM (patroni
// then stops its PostgreSQL), SIGKILL after a bound; the directories are
// removed. The processes also die with their namespace (lib/netns.mjs).

import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { exited, removeTmpDir, tmpDir, track, waitExit, waitFor } from './stack.mjs';
import { pgBin } from './pg.mjs';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const [TTL, LOOP_WAIT, RETRY_TIMEOUT] = (process.env.LARK_TEST_PATRONI_TIMING || '10,1,3').split(',').map(Number);

/** Are patroni and etcd installed (tools/deps.sh test installs them)? */
export function patroniAvailable() {
  const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
  return has('patroni') && has('etcd') && !!pgBin();
}

/** GET url (bounded); resolves { status, json } or { status: 0 } when nothing answered. */
export function getJson(url, timeout = 2000) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(body); } catch { json = undefined; }
        resolve({ status: res.statusCode, json });
      });
      res.on('error', () => resolve({ status: 0 }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0 }));
  });
}

function spawnLogged(argv, log, opts = {}) {
  const out = fs.openSync(log, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out], ...opts });
  fs.closeSync(out);
  track(child);
  return child;
}

async function stopChild(child, limit = 20000) {
  if (!child || exited(child)) return;
  child.kill('SIGTERM');
  if (!(await waitExit(child, limit))) {
    child.kill('SIGKILL');
    await waitExit(child, 5000);
  }
}

function tail(file, n = 3000) {
  try { return fs.readFileSync(file, 'utf8').slice(-n); } catch { return ''; }
}

export class Etcd {
  /** host: a lib/netns.mjs host. */
  constructor(host) {
    this.host = host;
    this.dir = null;
    this.proc = null;
  }

  get url() { return `http://${this.host.addr}:2379`; }
  get log() { return path.join(this.dir, 'etcd.log'); }

  async start() {
    this.dir = tmpDir('lark-etcd-');
    const peer = `http://${this.host.addr}:2380`;
    this.proc = spawnLogged([...this.host.wrap, 'etcd', '--name', 'e1', '--data-dir', path.join(this.dir, 'data'),
      '--listen-client-urls', this.url, '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `e1=${peer}`, '--initial-cluster-state', 'new'], this.log);
    await waitFor(async () => exited(this.proc) || (await getJson(`${this.url}/health`)).status === 200,
      'etcd healthy', 20000, 100);
    if (exited(this.proc)) throw new Error(`etcd exited at start:\n${tail(this.log)}`);
    return this;
  }

  async stop() {
    await stopChild(this.proc);
    if (this.dir) removeTmpDir(this.dir);
    this.dir = null;
  }
}

export class PatroniNode {
  /**
   * host: a lib/netns.mjs host; name: the member's name; etcd: an Etcd;
   * subnet: "10.231.N" (pg_hba trusts it: the test's private bridge).
   */
  constructor(host, name, etcd, subnet) {
    this.host = host;
    this.name = name;
    this.etcd = etcd;
    this.subnet = subnet;
    this.dir = null;
    this.proc = null;
    this.port = 5432;
  }

  get api() { return `http://${this.host.addr}:8008`; }
  get log() { return path.join(this.dir, 'patroni.log'); }
  get data() { return path.join(this.dir, 'data'); }

  config() {
    const a = this.host.addr;
    const trust = [`host all all ${this.subnet}.0/24 trust`, `host replication all ${this.subnet}.0/24 trust`,
      'local all all trust', 'local replication all trust'];
    return {
      scope: 'lark',
      name: this.name,
      restapi: { listen: `${a}:8008`, connect_address: `${a}:8008` },
      etcd3: { host: `${this.etcd.host.addr}:2379` },
      bootstrap: {
        dcs: {
          ttl: TTL, loop_wait: LOOP_WAIT, retry_timeout: RETRY_TIMEOUT, maximum_lag_on_failover: 1048576,
          synchronous_mode: true,
          postgresql: {
            use_pg_rewind: false,
            parameters: { max_connections: 400, shared_buffers: '32MB', fsync: 'off', full_page_writes: 'off' },
          },
        },
        initdb: [{ encoding: 'UTF8' }, { locale: 'C' }, { auth: 'trust' }],
        pg_hba: trust,
      },
      postgresql: {
        listen: `${a}:5432`,
        connect_address: `${a}:5432`,
        data_dir: this.data,
        bin_dir: pgBin(),
        pgpass: path.join(this.dir, 'pgpass'),
        authentication: {
          superuser: { username: 'postgres' },
          replication: { username: 'postgres' },
          rewind: { username: 'postgres' },
        },
        parameters: { unix_socket_directories: this.dir },
        pg_hba: trust,
        // a spread checkpoint after CREATE DATABASE paces its writes over
        // minutes, and the clone waits for it
        basebackup: [{ checkpoint: 'fast' }],
      },
      watchdog: { mode: 'off' },
      tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
    };
  }

  /** Start patroni (bounded wait until its REST API answers). */
  async start() {
    this.dir = tmpDir(`lark-patroni-${this.name}-`);
    fs.chmodSync(this.dir, 0o700);
    if (isRoot) fs.chownSync(this.dir, ...pgIds());
    // YAML is a superset of JSON: the configuration needs no YAML writer
    const conf = path.join(this.dir, 'patroni.yml');
    fs.writeFileSync(conf, JSON.stringify(this.config(), null, 2));
    const argv = isRoot ? ['runuser', '-u', 'postgres', '--', 'patroni', conf] : ['patroni', conf];
    this.proc = spawnLogged([...this.host.wrap, ...argv], this.log, { cwd: this.dir });
    await waitFor(async () => exited(this.proc) || (await getJson(`${this.api}/patroni`)).status !== 0,
      `patroni ${this.name}'s REST API`, 30000, 100);
    if (exited(this.proc)) throw new Error(`patroni ${this.name} exited at start:\n${tail(this.log)}`);
    return this;
  }

  /** Patroni's view of this member: { state, role, ... } or null. */
  async status() {
    const r = await getJson(`${this.api}/patroni`);
    return r.status ? r.json : null;
  }

  /** psql over the unix socket (works while the host is cut off); resolves the output. */
  psql(sql, db = 'postgres') {
    return new Promise((resolve, reject) => {
      execFile('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.dir, '-p', String(this.port),
        '-U', 'postgres', '-d', db, '-c', sql], { timeout: 30000, encoding: 'utf8', killSignal: 'SIGKILL' },
      (err, stdout, stderr) => (err ? reject(new Error(`psql on ${this.name}: ${stderr || err.message}`)) : resolve(stdout)));
    });
  }

  logTail(n) { return this.dir ? tail(this.log, n) : ''; }

  async stop() {
    await stopChild(this.proc, 30000);
    // a postmaster patroni left (it was killed): stop it too
    const pidFile = this.dir && path.join(this.data, 'postmaster.pid');
    if (pidFile && fs.existsSync(pidFile)) {
      const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
      try { process.kill(pid, 'SIGQUIT'); } catch { /* gone */ }
      const end = Date.now() + 10000;
      for (;;) {
        try { process.kill(pid, 0); } catch { break; }
        if (Date.now() > end) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (this.dir) removeTmpDir(this.dir);
    this.dir = null;
  }
}

/** [uid, gid] of the postgres user. */
function pgIds() {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  return [Number(r.stdout), Number(g.stdout)];
}

/**
 * The cluster's members as Patroni's REST API tells them (from node):
 * [{ name, role: 'leader' | 'sync_standby' | 'replica', state, lag }] or [].
 */
export async function members(node) {
  const r = await getJson(`${node.api}/cluster`);
  return r.status === 200 && r.json && Array.isArray(r.json.members) ? r.json.members : [];
}
