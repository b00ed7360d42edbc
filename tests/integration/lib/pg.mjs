// pg.mjs - a throw-away PostgreSQL server for a test: initdb in a temporary
// directory, listening only on a unix socket there (no TCP port to race
// for), stopped and removed by stop(). initdb and pg_ctl refuse to run as
// root, so as root they run as the postgres user (DESIGN.md).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The directory holding initdb and pg_ctl, or null. */
export function pgBin() {
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) return null;
  const versions = fs.readdirSync(base).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(base, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb'))) return bin;
  }
  return null;
}

function run(argv, what) {
  const asRoot = process.getuid && process.getuid() === 0;
  const full = asRoot ? ['runuser', '-u', 'postgres', '--', ...argv] : argv;
  const r = spawnSync(full[0], full.slice(1), { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr || r.stdout || r.error}`);
  return r.stdout;
}

export class Postgres {
  /** Start a server; host is the socket directory (libpq's host=). */
  start() {
    const bin = pgBin();
    if (!bin) throw new Error('PostgreSQL is not installed (tools/deps.sh test installs it)');
    this.bin = bin;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lark-pg-'));
    fs.chmodSync(this.dir, 0o777);
    if (process.getuid && process.getuid() === 0) spawnSync('chown', ['postgres', this.dir]);
    this.data = path.join(this.dir, 'data');
    run([path.join(bin, 'initdb'), '-D', this.data, '-A', 'trust', '-U', 'postgres', '--no-sync',
      '-E', 'UTF8'], 'initdb');
    run([path.join(bin, 'pg_ctl'), '-D', this.data, '-w', '-t', '30', '-l', path.join(this.dir, 'log'),
      '-o', `-k ${this.dir} -c listen_addresses='' -c fsync=off -c max_connections=200`, 'start'],
    'pg_ctl start');
    this.host = this.dir;
    return this;
  }

  /** Create a database; returns the LARK_DB URL for it. */
  createDb(name) {
    const r = spawnSync('psql', ['-h', this.host, '-U', 'postgres', '-d', 'postgres', '-v',
      'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8', timeout: 30000 });
    if (r.status !== 0) throw new Error(`CREATE DATABASE: ${r.stderr}`);
    return `postgresql:///${name}?host=${this.host}&user=postgres`;
  }

  /** Run SQL in database db; returns psql's unaligned output. */
  query(db, sql) {
    const r = spawnSync('psql', ['-h', this.host, '-U', 'postgres', '-d', db, '-At', '-v',
      'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 30000 });
    if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
    return r.stdout.trim();
  }

  stop() {
    if (!this.data) return;
    try {
      run([path.join(this.bin, 'pg_ctl'), '-D', this.data, '-m', 'immediate', '-w', 'stop'], 'pg_ctl stop');
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
      this.data = null;
    }
  }
}
