// test_ops.mjs - the operations a small company needs on day one (issue
// 12): --version everywhere, every tool the README names built, HEAD where
// GET is allowed, /metrics' process and build series, the health check's
// cached write, bodiless POSTs, one larkd per data directory, files nobody
// else may read, JSON logs, no password in any log line and libpq's
// messages on one line, and `make install` finding its migrations.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { assert, skip, test } from './lib/harness.mjs';
import { Stack, backend, build, secret, sleep, tmpDir, top, removeTmpDir, waitFor } from './lib/stack.mjs';
import { Api, metrics, request, token } from './lib/client.mjs';

const version = fs.readFileSync(path.join(top, 'VERSION'), 'utf8').trim();
let s;

test('start', async () => {
  s = await new Stack().start();
});

test('--version on every binary: the release and the commit', async () => {
  for (const b of ['larkd', 'lark-push', 'lark-token', 'lark-push-admin', 'lark-copy', 'larkbench', 'fsyncbench']) {
    const out = execFileSync(path.join(build, b), ['--version'], { encoding: 'utf8' });
    assert.match(out, new RegExp(`^${b} ${version.replace(/\./g, '\\.')} \\(commit ([0-9a-f]{12}(-dirty)?|unknown)\\)\\n$`), out);
  }
});

test('make builds every program README.md and docs/ name as build/NAME', async () => {
  const text = ['README.md', 'docs/OPERATIONS.md', 'docs/DEPLOY.md']
    .map((f) => fs.readFileSync(path.join(top, f), 'utf8')).join('\n');
  const named = [...new Set([...text.matchAll(/\bbuild\/([a-z][a-z-]+)\b/g)].map((m) => m[1]))];
  assert.ok(named.includes('lark-push-admin') && named.includes('lark-token'), named.join(' '));
  for (const n of named) {
    const p = path.join(build, n);
    assert.ok(fs.existsSync(p) && (fs.statSync(p).mode & 0o111), `build/${n} is named but not built`);
  }
});

/** Write a raw HTTP request to 127.0.0.1:port; the whole answer. */
function rawHttp(port, text) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.end(text));
    let got = '';
    c.setTimeout(10000, () => c.destroy(new Error('no answer')));
    c.on('data', (d) => { got += d; });
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

/** A raw HEAD: status, headers, and whether any body byte came. */
function head(url, tok) {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method: 'HEAD', headers: tok ? { Authorization: `Bearer ${tok}` } : {}, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes }));
    });
    r.setTimeout(5000, () => r.destroy(new Error(`HEAD ${url} timed out`)));
    r.on('error', reject);
    r.end();
  });
}

test('HEAD wherever GET is allowed: the GET answer\'s headers, no body, nothing held', async () => {
  const u = new Api(s.url, 'head-user');
  await u.send('head-peer', 'hi');
  const conv = (await u.get('/v1/conversations')).json.conversations[0].id;
  const cases = [
    ['/v1/healthz', null, 200, 'application/json'],
    ['/metrics', null, 200, 'text/plain; version=0.0.4'],
    ['/v1/conversations', u.tok, 200, 'application/json'],
    [`/v1/conversations/${conv}/messages`, u.tok, 200, 'application/json'],
    ['/v1/events', u.tok, 200, 'text/event-stream'],
    ['/v1/poll?timeout=30', u.tok, 200, 'application/json'],
    ['/v1/conversations', null, 401, 'application/json'],
    ['/v1/conversations/c_nope', u.tok, 404, 'application/json'],
  ];
  for (const [p, tok, status, type] of cases) {
    const t0 = Date.now();
    const r = await head(s.url + p, tok);
    assert.equal(r.status, status, `HEAD ${p}`);
    assert.equal(r.headers['content-type'], type, `HEAD ${p}`);
    assert.equal(r.bytes, 0, `HEAD ${p} sent a body`);
    assert.ok(Date.now() - t0 < 3000, `HEAD ${p} was held`);
  }
  // GET's Content-Length, without the bytes
  const get = await request(s.url, 'GET', '/v1/healthz');
  assert.equal((await head(`${s.url}/v1/healthz`)).headers['content-length'], String(get.body.length));
  // and only where GET is
  const r = await request(s.url, 'POST', '/v1/healthz');
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET, HEAD');
  assert.equal((await head(`${s.url}/v1/messages`, u.tok)).status, 405);
});

test('/metrics: process series and the build', async () => {
  const m = await metrics(s.url);
  for (const k of ['process_cpu_seconds_total', 'process_virtual_memory_bytes', 'process_resident_memory_bytes',
    'process_open_fds', 'process_max_fds', 'process_start_time_seconds', 'process_threads'])
    assert.ok(Number.isFinite(m[k]) && m[k] >= 0, `${k} = ${m[k]}`);
  assert.ok(m.process_resident_memory_bytes > 1e6);
  assert.ok(m.process_open_fds > 3 && m.process_open_fds < m.process_max_fds);
  assert.ok(m.process_threads >= 16, `threads ${m.process_threads}`); // the workers
  const started = m.process_start_time_seconds * 1000;
  assert.ok(started <= Date.now() && Date.now() - started < 10 * 60 * 1000, `start ${new Date(started)}`);
  const info = Object.keys(m).find((k) => k.startsWith('lark_build_info{'));
  assert.ok(info && info.includes(`version="${version}"`) && /commit="[^"]+"/.test(info), info);
  assert.equal(m[info], 1);
});

test('healthz: a real write, at most one per 1.5 s however often it is asked', async () => {
  const ok = 'lark_health_writes_total{result="ok"}';
  await request(s.url, 'GET', '/v1/healthz');
  const before = (await metrics(s.url))[ok];
  const answers = await Promise.all(Array.from({ length: 40 }, () => request(s.url, 'GET', '/v1/healthz')));
  assert.ok(answers.every((r) => r.status === 200 && r.json.status === 'ok'));
  const after = (await metrics(s.url))[ok];
  assert.ok(after - before <= 1, `${after - before} writes for 40 probes`);
  await sleep(1600);
  await request(s.url, 'GET', '/v1/healthz');
  assert.equal((await metrics(s.url))[ok], after + 1, 'a probe after the cache expired writes again');
});

test('bodiless POSTs: typing and heartbeat take an empty body, with or without a Content-Type', async () => {
  const a = new Api(s.url, 'body-less');
  const sent = await a.send('body-less-peer', 'x');
  const conv = sent.json.conversation_id;
  for (const headers of [{ 'Content-Length': '0' }, { 'Content-Length': '0', 'Content-Type': 'application/json' },
    { 'Content-Length': '0', 'Content-Type': 'text/plain' }]) {
    const t = await request(s.url, 'POST', `/v1/conversations/${conv}/typing`, { tok: a.tok, headers });
    assert.equal(t.status, 204, `typing ${JSON.stringify(headers)}: ${t.body}`);
    const h = await request(s.url, 'POST', '/v1/presence/heartbeat', { tok: a.tok, headers });
    assert.equal(h.status, 200, `heartbeat ${JSON.stringify(headers)}: ${h.body}`);
    assert.equal(h.json.status, 'online');
  }
  // A body sent chunked, empty (what a client that streams bodies sends)
  const chunked = await rawHttp(s.port, `POST /v1/presence/heartbeat HTTP/1.1\r\nHost: x\r\n` +
    `Authorization: Bearer ${a.tok}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 200 /);
  // Without any Content-Length, lighttpd itself refuses a POST (RFC 9110
  // 8.6 says to send "Content-Length: 0"; lighttpd has no setting for it),
  // in lark's error shape: docs/API.md "Errors".
  const bare = await rawHttp(s.port, `POST /v1/presence/heartbeat HTTP/1.1\r\nHost: x\r\n` +
    `Authorization: Bearer ${a.tok}\r\nConnection: close\r\n\r\n`);
  assert.match(bare, /^HTTP\/1\.1 411 /);
  assert.equal(JSON.parse(bare.slice(bare.indexOf('\r\n\r\n') + 4)).error.code, 'length_required');
  // larkd itself needs no Content-Length (CGI, or another web server)
  const env = {
    PATH: process.env.PATH, LARK_DATA: s.dir, LARK_JWT_SECRET: secret, GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: 'POST', REQUEST_URI: '/v1/presence/heartbeat', REMOTE_ADDR: '127.0.0.1',
    HTTP_AUTHORIZATION: `Bearer ${a.tok}`, ASAN_OPTIONS: 'detect_leaks=1:exitcode=23',
    ...('LARK_DB' in s.larkdEnv() ? { LARK_DB: s.larkdEnv().LARK_DB } : {}),
  };
  const cgi = spawnSync(path.join(build, 'larkd'), [], { env, input: '', timeout: 20000 });
  assert.equal(cgi.status, 0, String(cgi.stderr));
  assert.match(cgi.stdout.toString(), /^Status: 200 OK\r\n/);
  assert.match(cgi.stdout.toString(), /"status":"online"/);
});

test('one larkd per data directory: a second one says who holds it and changes nothing', async () => {
  const r = spawnSync(path.join(build, 'larkd'), [], { env: s.larkdEnv(), timeout: 20000, encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`another process \\(pid ${s.larkd.pid}\\) is using .*larkd\\.sock`));
  assert.match(r.stderr, /stop it first, or give this larkd a data directory of its own/);
  // the first one still serves, on its own socket
  assert.equal((await request(s.url, 'GET', '/v1/healthz')).status, 200);
  assert.equal(fs.readFileSync(path.join(s.dir, 'larkd.sock.lock'), 'utf8').trim(), String(s.larkd.pid));
  if (backend === 'sqlite') {
    // a second larkd on the same database file, with a socket of its own
    const other = tmpDir('lark-other-');
    const env = { ...s.larkdEnv(), LARK_DATA: other, LARK_LISTEN: path.join(other, 'x.sock'),
      LARK_WS_LISTEN: 'off', LARK_DB: `sqlite:${path.join(s.dir, 'lark.db')}` };
    const r2 = spawnSync(path.join(build, 'larkd'), [], { env, timeout: 20000, encoding: 'utf8' });
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(r2.stderr, /is using .*lark\.db \(lock/);
    removeTmpDir(other);
  }
});

test('nothing larkd writes is readable by other users; sockets are 0660', async () => {
  const made = fs.readdirSync(s.dir).filter((f) => /^lark\.db|\.sock$|\.lock$/.test(f)); // not the harness's logs
  assert.ok(made.includes('larkd.sock') && made.includes('larkd.sock.lock'), made.join(' '));
  for (const f of made) {
    const m = fs.statSync(path.join(s.dir, f)).mode & 0o777;
    if (f.endsWith('.sock')) assert.equal(m, 0o660, f);
    else assert.equal(m & 0o007, 0, `${f} is ${m.toString(8)}`);
  }
});

test('log_format = json: lines parse, with time, level, program and msg', async () => {
  const j = new Stack({ LARK_LOG_FORMAT: 'json', LARK_LOG_LEVEL: 'debug' });
  await j.start();
  await new Api(j.url, 'json-log').send('json-peer', 'x');
  await j.stopLarkd();
  const lines = fs.readFileSync(j.larkdLog, 'utf8').split('\n').filter(Boolean);
  await j.stop();
  assert.ok(lines.length >= 3, lines.join('\n'));
  for (const l of lines) {
    const o = JSON.parse(l);
    assert.deepEqual(Object.keys(o), ['time', 'level', 'program', 'msg'], l);
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(o.program, 'larkd');
  }
  assert.ok(lines.some((l) => /"msg":"ready version=/.test(l)));
  assert.ok(lines.some((l) => /"level":"debug","program":"larkd","msg":"request POST \/v1\/messages status=201/.test(l)));
});

test('no password in any log line; libpq\'s messages on one line', async () => {
  // a PostgreSQL that refuses connections (nothing listens on port 1)
  const r = spawnSync(path.join(build, 'larkd'), ['--migrate'], {
    env: { ...process.env, LARK_DATA: s.dir, LARK_DB: 'postgresql://lark:s3cret-Pw@127.0.0.1:1/lark?password=s3cret-Pw' },
    encoding: 'utf8', timeout: 30000,
  });
  assert.notEqual(r.status, 0);
  assert.ok(!r.stderr.includes('s3cret-Pw'), r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.ok(lines.some((l) => /cannot connect: .*Connection refused Is the server running/.test(l)), r.stderr);
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARN|ERROR) larkd: /, `a continuation line: ${l}`);
  // a URL in a configuration error
  const bad = spawnSync(path.join(build, 'larkd'), ['--migrate'], {
    env: { ...process.env, LARK_DATA: s.dir, LARK_DB: 'postgre://lark:s3cret-Pw@db/lark' }, encoding: 'utf8',
  });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /postgre:\/\/lark:\*\*\*@db\/lark/);
  assert.ok(!bad.stderr.includes('s3cret-Pw'));
});

if (path.basename(build) !== 'build') {
  skip('make install: installed binaries find the installed migrations; nothing names the build tree',
    'release build only (make install would rebuild this build directory with release flags)');
} else {
  test('make install: installed binaries find the installed migrations; nothing names the build tree', async () => {
    const dest = tmpDir('lark-install-');
    execFileSync('make', ['-s', 'install', `DESTDIR=${dest}`, 'PREFIX=/opt/lark'], { cwd: top, stdio: 'ignore' });
    const bin = path.join(dest, 'opt/lark/bin');
    for (const b of fs.readdirSync(bin)) {
      const bytes = fs.readFileSync(path.join(bin, b));
      assert.equal(bytes.indexOf(Buffer.from(top)), -1, `${b} names ${top}`);
    }
    const data = path.join(dest, 'data');
    fs.mkdirSync(data);
    const r = spawnSync(path.join(bin, 'larkd'), ['--migrate'], { env: { ...process.env, LARK_DATA: data }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /migration applied version=1/);
    assert.match(execFileSync(path.join(bin, 'larkd'), ['--help'], { encoding: 'utf8' }),
      new RegExp(`default: ${dest}/opt/lark/share/lark/migrations\\n`));
    for (const f of ['etc/lark/lark.conf', 'opt/lark/lib/systemd/system/larkd.service',
      'etc/lighttpd/conf-available/50-lark.conf', 'opt/lark/share/lark/www/lark.js', 'opt/lark/share/doc/lark/DEPLOY.md'])
      assert.ok(fs.existsSync(path.join(dest, f.replace(/^etc\//, 'opt/lark/etc/'))), f);
    assert.match(fs.readFileSync(path.join(dest, 'opt/lark/lib/systemd/system/larkd.service'), 'utf8'),
      /^ExecStart=\/opt\/lark\/bin\/larkd --config \/opt\/lark\/etc\/lark\/lark.conf$/m);
    removeTmpDir(dest);
  });
}

test('conf/lark.conf (/etc/lark/lark.conf): every key, its defaults true, and it loads as installed', async () => {
  const help = execFileSync(path.join(build, 'larkd'), ['--help'], { encoding: 'utf8' });
  const defaults = {};
  for (const m of help.matchAll(/^ {2}([a-z_0-9]+) +LARK_[A-Z_0-9]+ .*\n +default: (.*)$/gm)) defaults[m[1]] = m[2];
  assert.ok(Object.keys(defaults).length > 50, Object.keys(defaults).join(' '));
  const text = fs.readFileSync(path.join(top, 'conf/lark.conf'), 'utf8');
  for (const key of Object.keys(defaults))
    assert.match(text, new RegExp(`^(# )?${key} =`, 'm'), `conf/lark.conf does not mention ${key}`);
  // a commented line shows the default (paths and URLs that are examples aside)
  const examples = new Set(['db', 'migrations', 'jwt_jwks_file']);
  const commented = [...text.matchAll(/^# ([a-z_0-9]+) = (.+)$/gm)];
  for (const [, key, value] of commented)
    if (!examples.has(key)) assert.equal(value, defaults[key], `conf/lark.conf's ${key}`);
  // as installed, with every commented default switched on: it loads
  const dir = tmpDir('lark-conf-');
  fs.mkdirSync(path.join(dir, 'data'));
  fs.mkdirSync(path.join(dir, 'run'));
  fs.writeFileSync(path.join(dir, 'jwt-secrets'), 'k1 0123456789abcdef0123456789\n');
  const conf = text.replace(/^# ([a-z_0-9]+ = .+)$/gm, (line, kv) => (examples.has(kv.split(' ')[0]) ? line : kv))
    .replaceAll('/var/lib/lark', path.join(dir, 'data')).replaceAll('/run/lark', path.join(dir, 'run'))
    .replaceAll('/etc/lark/jwt-secrets', path.join(dir, 'jwt-secrets'));
  fs.writeFileSync(path.join(dir, 'lark.conf'), conf);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LARK_')));
  const r = spawnSync(path.join(build, 'larkd'), ['--config', path.join(dir, 'lark.conf'), '--migrate'], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /migrations applied to sqlite:/);
  removeTmpDir(dir);
});

test('stop', async () => {
  await s.stop();
});
