// proxies.mjs - real proxies from Debian's packages, on loopback, in front
// of a Stack, for the proxy matrix (tests/browser/test_proxies.mjs; issue
// 15, docs/PROXIES.md).
//
// Each proxy runs in the foreground with a private configuration in its own
// temporary directory (never /etc, never a system service: tools/deps.sh
// stops any that apt starts) and is stopped by stop() or, if a test dies,
// by the harness's killAll. The configurations keep Debian's defaults
// wherever they decide what happens to a stream - squid's access rules,
// tinyproxy's and privoxy's shipped files - and change only where the proxy
// listens and writes; the nginx and HAProxy ones are the reverse-proxy
// configurations docs/OPERATIONS.md "Behind proxies" recommends (and, for
// the buffering case, the one it warns against).
//
// forward proxies (the browser is configured to use them; ws:// goes through
// CONNECT): squid, tinyproxy, privoxy, privoxy-443. Reverse proxies (the
// page is loaded from them): nginx-stock, nginx, nginx-buffering, haproxy.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { exited, freePort, removeTmpDir, sleep, tmpDir, track, waitExit, waitFor } from './stack.mjs';
import net from 'node:net';

const BINARIES = {
  squid: '/usr/sbin/squid', tinyproxy: '/usr/bin/tinyproxy', privoxy: '/usr/sbin/privoxy',
  nginx: '/usr/sbin/nginx', haproxy: '/usr/sbin/haproxy',
};

/** Debian packages whose binaries are missing, or [] (tools/deps.sh test installs them). */
export function missingProxies() {
  return Object.entries(BINARIES).filter(([, bin]) => !fs.existsSync(bin)).map(([pkg]) => pkg);
}

/** The Debian user a proxy drops root to, and so owns its log directory. */
function chownTo(dir, user) {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user} (its Debian package creates it)`);
  const [, , uid, gid] = line.split(':');
  fs.chownSync(dir, Number(uid), Number(gid));
}

function tcpUp(port) {
  return new Promise((res) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); res(true); });
    c.on('error', () => res(false));
  });
}

class Proxy {
  /** name: the case; kind: 'forward' | 'reverse'; upstream: the Stack's port. */
  constructor(name, kind, upstream) {
    this.name = name;
    this.kind = kind;
    this.upstream = upstream;
    this.dir = tmpDir(`lark-${name}-`);
    fs.chmodSync(this.dir, 0o755);
    this.log = path.join(this.dir, 'stderr');
    this.proc = null;
  }

  /** http://127.0.0.1:port: the page (reverse) or the browser's proxy (forward). */
  get url() { return `http://127.0.0.1:${this.port}`; }

  async start() {
    this.port = await freePort();
    const argv = this.configure();
    const out = fs.openSync(this.log, 'a');
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out], cwd: this.dir });
    fs.closeSync(out);
    track(this.proc);
    const proc = this.proc;
    await waitFor(async () => exited(proc) || tcpUp(this.port), `${this.name} on port ${this.port}`, 20000, 50);
    if (exited(proc)) throw new Error(`${this.name} exited at start:\n${this.logs()}`);
    return this;
  }

  async stop() {
    if (this.proc && !exited(this.proc)) {
      this.proc.kill('SIGTERM');
      if (!(await waitExit(this.proc, 10000))) {
        this.proc.kill('SIGKILL');
        await waitExit(this.proc, 5000);
      }
    }
    removeTmpDir(this.dir);
  }

  logs() {
    const tail = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-2000) : '');
    return `--- ${this.name} ---\n${tail(this.log)}`;
  }

  file(name, text) {
    const f = path.join(this.dir, name);
    fs.writeFileSync(f, text);
    return f;
  }
}

/**
 * squid 5.7 with Debian's access rules: CONNECT only to port 443, so a
 * ws:// through it (Chromium tunnels it with CONNECT) is refused.
 */
class Squid extends Proxy {
  configure() {
    const logs = path.join(this.dir, 'logs');
    fs.mkdirSync(logs);
    chownTo(logs, 'proxy');
    const conf = this.file('squid.conf', `# Debian 12's /etc/squid/squid.conf, as shipped, but for where it listens and writes
acl SSL_ports port 443
acl Safe_ports port 80 21 443 70 210 1025-65535 280 488 591 777
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access allow localhost manager
http_access deny manager
http_access allow localhost
http_access deny all
http_port 127.0.0.1:${this.port}
refresh_pattern ^ftp:		1440	20%	10080
refresh_pattern -i (/cgi-bin/|\\?) 0	0%	0
refresh_pattern .		0	20%	4320
logfile_rotate 0
# private paths, and no 30 s wait for clients at shutdown
pid_filename ${logs}/squid.pid
cache_log ${logs}/cache.log
access_log ${logs}/access.log
coredump_dir ${logs}
shutdown_lifetime 0 seconds
`);
    return [BINARIES.squid, '-N', '-f', conf];
  }

  logs() { return super.logs() + readTail(path.join(this.dir, 'logs/cache.log')); }
}

function readTail(f) {
  return fs.existsSync(f) ? `\n${fs.readFileSync(f, 'utf8').slice(-2000)}` : '';
}

/** tinyproxy 1.11 as Debian ships it: no ConnectPort line, so CONNECT goes anywhere. */
class Tinyproxy extends Proxy {
  configure() {
    const logs = path.join(this.dir, 'logs');
    fs.mkdirSync(logs);
    chownTo(logs, 'tinyproxy');
    const conf = this.file('tinyproxy.conf', `# Debian 12's /etc/tinyproxy/tinyproxy.conf, as shipped, but for where it listens and writes
User tinyproxy
Group tinyproxy
Port ${this.port}
Listen 127.0.0.1
Timeout 600
DefaultErrorFile "/usr/share/tinyproxy/default.html"
StatFile "/usr/share/tinyproxy/stats.html"
LogFile "${logs}/tinyproxy.log"
LogLevel Info
PidFile "${logs}/tinyproxy.pid"
MaxClients 100
Allow 127.0.0.1
Allow ::1
ViaProxyName "tinyproxy"
`);
    return [BINARIES.tinyproxy, '-d', '-c', conf];
  }
}

/**
 * privoxy 3.0.34 with Debian's shipped action and filter files: it buffers
 * every text/* response that is not plain to filter it (no SSE at all), and
 * allows CONNECT to any port (so ws:// passes). only443: plus the
 * `+limit-connect{443}` that default.action suggests - CONNECT to port 443
 * only, as squid's default - so that ws:// is refused too.
 */
class Privoxy extends Proxy {
  constructor(name, upstream, { only443 = false } = {}) {
    super(name, 'forward', upstream);
    this.only443 = only443;
  }

  configure() {
    const extra = this.only443
      ? `actionsfile ${this.file('only443.action', '{+limit-connect{443}}\n/\n')}\n` : '';
    const conf = this.file('config', `# Debian 12's /etc/privoxy/config, as shipped, but for where it listens and logs
confdir /etc/privoxy
logdir ${this.dir}
actionsfile match-all.action
actionsfile default.action
actionsfile user.action
${extra}filterfile default.filter
filterfile user.filter
logfile logfile
listen-address 127.0.0.1:${this.port}
toggle 1
enable-remote-toggle 0
enable-remote-http-toggle 0
enable-edit-actions 0
enforce-blocks 0
buffer-limit 4096
enable-proxy-authentication-forwarding 0
forwarded-connect-retries 0
accept-intercepted-requests 0
allow-cgi-request-crunching 0
split-large-forms 0
keep-alive-timeout 5
tolerate-pipelining 1
socket-timeout 300
`);
    return [BINARIES.privoxy, '--no-daemon', conf];
  }
}

/**
 * nginx 1.22 as a reverse proxy. variant:
 *   'stock'      a bare proxy_pass, nginx's defaults (HTTP/1.0 upstream, the
 *                Upgrade header dropped, buffering that X-Accel-Buffering: no
 *                turns off, 60 s read timeout)
 *   'lark'       the configuration docs/OPERATIONS.md recommends
 *   'buffering'  stock plus proxy_ignore_headers X-Accel-Buffering: a load
 *                balancer or CDN that buffers whatever the backend asks
 */
export function nginxConf(variant, { port, upstream, dir }) {
  const paths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `    ${t}_temp_path ${dir}/${t};`).join('\n');
  const locations = {
    stock: `        location / {
            proxy_pass http://lark;
        }`,
    buffering: `        location / {
            proxy_pass http://lark;
            proxy_ignore_headers X-Accel-Buffering;
            proxy_buffering on;
        }`,
    // docs/OPERATIONS.md "Behind proxies": keep this the same as there
    lark: `        location / {
            proxy_pass http://lark;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Connection "";
        }
        location /v1/events {
            proxy_pass http://lark;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
        }
        location /v1/poll {
            proxy_pass http://lark;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 90s;
        }
        location /v1/ws {
            proxy_pass http://lark;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }`,
  }[variant];
  return `# nginx as a reverse proxy in front of lark: ${variant}
daemon off;
master_process off;   # one process: nothing left behind if a test is killed
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
    access_log ${dir}/access.log;
${paths}
    upstream lark {
        server 127.0.0.1:${upstream};
        keepalive 16;
    }
    server {
        listen 127.0.0.1:${port};
${locations}
    }
}
`;
}

class Nginx extends Proxy {
  constructor(name, upstream, variant) {
    super(name, 'reverse', upstream);
    this.variant = variant;
  }

  configure() {
    for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      fs.mkdirSync(path.join(this.dir, t));
      chownTo(path.join(this.dir, t), 'www-data');
    }
    const conf = this.file('nginx.conf', `user www-data;\n${nginxConf(this.variant, { port: this.port, upstream: this.upstream, dir: this.dir })}`);
    return [BINARIES.nginx, '-p', this.dir, '-c', conf];
  }

  logs() { return super.logs() + readTail(path.join(this.dir, 'error.log')); }
}

/**
 * HAProxy 2.6 in HTTP mode: streams responses as they come and passes
 * WebSocket upgrades by itself; `timeout tunnel` rules an upgraded session,
 * `timeout server` a held SSE stream or long-poll (docs/OPERATIONS.md).
 */
export function haproxyConf({ port, upstream }) {
  return `# HAProxy in front of lark (docs/OPERATIONS.md "Behind proxies")
global
    maxconn 4096
defaults
    mode http
    option http-server-close
    # stream each write at once: without it HAProxy may hold small writes
    # (an SSE event, a WebSocket line) for about 200 ms (measured)
    option http-no-delay
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend lark_in
    bind 127.0.0.1:${port}
    default_backend lark
backend lark
    server lark1 127.0.0.1:${upstream}
`;
}

class Haproxy extends Proxy {
  configure() {
    const conf = this.file('haproxy.cfg', haproxyConf({ port: this.port, upstream: this.upstream }));
    return [BINARIES.haproxy, '-db', '-f', conf];
  }
}

/** Every case of the matrix, in front of the lighttpd on port upstream. */
export function allProxies(upstream) {
  return [
    new Squid('squid', 'forward', upstream),
    new Tinyproxy('tinyproxy', 'forward', upstream),
    new Privoxy('privoxy', upstream),
    new Privoxy('privoxy-443', upstream, { only443: true }),
    new Nginx('nginx-stock', upstream, 'stock'),
    new Nginx('nginx', upstream, 'lark'),
    new Nginx('nginx-buffering', upstream, 'buffering'),
    new Haproxy('haproxy', 'reverse', upstream),
  ];
}

export { sleep };
