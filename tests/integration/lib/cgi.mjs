// cgi.mjs - larkd as a plain CGI program behind a real web server, as
// `make run-cgi` (lighttpd's mod_cgi, conf/lighttpd-cgi.conf) or Apache's
// mod_cgid (conf/apache-cgi.conf) run it: no larkd daemon, a larkd process
// per request. CgiServer has the shape of a Stack for the tests: start(),
// url, stop() (which fails the test if a sanitizer spoke in the server's
// error log, where every CGI process's stderr goes), logs().
//
// Apache started as root runs its CGI programs as www-data (it refuses to
// run them as root): the data directory is then www-data's, and the run's
// PostgreSQL cluster directory is opened for search (o+x, the socket is
// 0777) so that those processes can connect.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sharedCluster } from './pg.mjs';
import {
  SANITIZER, build, exited, freePort, freshDb, Lighttpd, removeTmpDir, secret, tmpDir, top, track, waitExit,
  waitFor,
} from './stack.mjs';
import net from 'node:net';

const isRoot = process.getuid && process.getuid() === 0;
const APACHE_USER = 'www-data';

function tcpUp(port) {
  return new Promise((res) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); res(true); });
    c.on('error', () => res(false));
  });
}

/** Apache httpd with conf/apache-cgi.conf, its own instance on a free port. */
class Apache {
  constructor({ dir, env }) {
    this.dir = dir;
    this.env = env;
    this.log = path.join(dir, 'apache2.stderr');
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  async start() {
    const envFile = path.join(this.dir, 'apache-env.conf');
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort();
      const env = {
        ...process.env,
        PORT: String(this.port),
        LARK_WWW: path.join(top, 'www'),
        LARK_LOGDIR: this.dir,
        LARK_APACHE_ENV: envFile,
        APACHE_RUN_USER: isRoot ? APACHE_USER : (process.env.USER || 'nobody'),
        APACHE_RUN_GROUP: isRoot ? APACHE_USER : 'nogroup',
        ...this.env,
      };
      const r = spawnSync(path.join(top, 'conf/apache-cgi-env.sh'), [], { env, encoding: 'utf8', timeout: 10000 });
      fs.writeFileSync(envFile, r.stdout);
      const out = fs.openSync(this.log, 'a');
      this.proc = spawn('apache2', ['-f', path.join(top, 'conf/apache-cgi.conf'), '-DFOREGROUND'],
        { env, stdio: ['ignore', out, out] });
      fs.closeSync(out);
      track(this.proc);
      const proc = this.proc;
      const up = await waitFor(async () => (exited(proc) ? 'exited' : (await tcpUp(this.port)) && 'up'),
        `apache2 on port ${this.port}`, 15000);
      if (up === 'up') return this;
    }
    throw new Error(`apache2 would not start:\n${this.logs()}`);
  }

  async stop() {
    if (this.proc && !exited(this.proc)) {
      this.proc.kill('SIGTERM');
      if (!(await waitExit(this.proc, 10000))) this.proc.kill('SIGKILL');
    }
  }

  logs() {
    const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-3000) : '');
    return `--- apache2 ---\n${read(this.log)}${read(path.join(this.dir, 'apache2.error.log'))}`;
  }
}

export class CgiServer {
  /** kind: 'lighttpd' or 'apache'; env: LARK_* settings for every larkd. */
  constructor(kind, env = {}) {
    this.kind = kind;
    this.env = env;
    this.dir = tmpDir(`lark-cgi-${kind}-`);
  }

  /** Run larkd --migrate as the CGI processes will run. */
  migrate(env) {
    const argv = [path.join(build, 'larkd'), '--migrate'];
    const full = this.asApacheUser ? ['runuser', '-u', APACHE_USER, '--', ...argv] : argv;
    const r = spawnSync(full[0], full.slice(1), { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0) throw new Error(`larkd --migrate failed: ${r.stderr}`);
  }

  async start() {
    const db = 'LARK_DB' in this.env ? {} : await freshDb();
    this.dropDb = db.drop;
    this.asApacheUser = this.kind === 'apache' && isRoot;
    if (this.asApacheUser) {
      fs.chmodSync(this.dir, 0o755);
      spawnSync('chown', [`${APACHE_USER}:`, this.dir]);
      const cluster = db.LARK_DB ? await sharedCluster() : null;
      if (cluster && cluster.dir) fs.chmodSync(cluster.dir, 0o711);
    }
    const env = {
      LARK_DATA: this.dir,
      LARK_JWT_SECRET: secret,
      LARK_LOG_LEVEL: 'info',
      LARK_CGI: path.join(build, 'larkd'),
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      ...db,
      ...this.env,
    };
    // LARK_LARKD_WRAPPER (e.g. valgrind, tools/valgrind.sh): the web
    // server runs a script that runs larkd under it
    if (process.env.LARK_LARKD_WRAPPER) {
      const script = path.join(this.dir, 'larkd-wrapped');
      fs.writeFileSync(script, `#!/bin/sh\nexec ${process.env.LARK_LARKD_WRAPPER} ${env.LARK_CGI} "$@"\n`, { mode: 0o755 });
      env.LARK_CGI = script;
    }
    this.migrate(env);
    this.web = this.kind === 'apache'
      ? new Apache({ dir: this.dir, env })
      : new Lighttpd({ dir: this.dir, conf: path.join(top, 'conf/lighttpd-cgi.conf'), env });
    await this.web.start();
    this.url = this.web.url;
    return this;
  }

  logs() { return this.web ? this.web.logs() : ''; }

  /** The larkd processes (CGI requests) running for this server now. */
  larkdPids() {
    const bin = path.join(build, 'larkd');
    const pids = [];
    for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        // larkd itself, or a wrapper (valgrind) running it
        if (!fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(bin)) continue;
        const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
        if (env.includes(`LARK_DATA=${this.dir}\0`)) pids.push(Number(p));
      } catch { /* gone, or not ours to read */ }
    }
    return pids;
  }

  /** Stop the web server; throws if a sanitizer spoke in its error log. */
  async stop() {
    if (this.web) await this.web.stop();
    const report = [];
    for (const f of ['lighttpd.error.log', 'apache2.error.log', 'lighttpd.stderr', 'apache2.stderr']) {
      const p = path.join(this.dir, f);
      const text = fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '';
      const m = text.match(SANITIZER);
      if (m) report.push(`${f}:\n${text.slice(Math.max(0, m.index - 200), m.index + 3000)}`);
    }
    if (report.length) throw new Error(`sanitizer report under ${this.kind}:\n${report.join('\n')}`);
    if (process.env.LARK_KEEP_TMP) return;
    if (this.dropDb) await this.dropDb();
    removeTmpDir(this.dir);
  }
}
