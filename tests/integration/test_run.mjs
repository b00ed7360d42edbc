// test_run.mjs - `make run` (tools/run.sh) says so and exits non-zero when it
// cannot serve: the port is taken, another larkd already runs on the same
// data directory (larkd's lock; the first instance keeps serving), or larkd
// stops on its own. Ctrl-C (SIGINT) is the clean end: exit 0. `make run-cgi`
// (tools/run-cgi.sh) serves the same API and www/ on PORT through
// lighttpd's mod_cgi, and ends the same way.
//
// run.sh does not depend on the store: these run in the SQLite runs only.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import {
  SANITIZER, backend, build, exited, freePort, removeTmpDir, secret, tmpDir, top, waitExit, waitFor,
} from './lib/stack.mjs';
import { request, token } from './lib/client.mjs';

const TESTS = ['make run on a taken port exits non-zero, saying so',
  'a second make run on the same data directory is refused; the first keeps serving',
  'larkd stopping on its own ends make run with a non-zero status; Ctrl-C ends it with 0',
  'make run-cgi serves the API and www/ on PORT with larkd as a CGI program; Ctrl-C ends it with 0'];

/** tools/run.sh in its own process group; resolves when it exits. */
function runSh(env, log, script = 'tools/run.sh') {
  const out = fs.openSync(log, 'a');
  const child = spawn(path.join(top, script), [], {
    cwd: top, detached: true, stdio: ['ignore', out, out],
    env: { ...process.env, BUILD: build, LARK_JWT_SECRET: secret, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23', ...env },
  });
  fs.closeSync(out);
  cleanup(async () => {
    if (!exited(child)) {
      process.kill(-child.pid, 'SIGTERM');
      if (!(await waitExit(child, 20000))) process.kill(-child.pid, 'SIGKILL');
    }
  });
  return child;
}

async function serving(child, port, log) {
  await waitFor(async () => {
    if (exited(child)) throw new Error(`tools/run.sh exited:\n${fs.readFileSync(log, 'utf8')}`);
    return (await request(`http://127.0.0.1:${port}`, 'GET', '/v1/healthz').catch(() => ({}))).status === 200;
  }, `make run on port ${port}`, 30000, 100);
}

if (backend !== 'sqlite') {
  for (const t of TESTS) skip(t, 'make run does not depend on the store: runs with --backend=sqlite');
} else {
  test(TESTS[0], async () => {
    const dir = tmpDir('lark-run-');
    cleanup(() => removeTmpDir(dir));
    const busy = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    cleanup(() => new Promise((r) => busy.close(r)));
    const port = busy.address().port;
    const log = path.join(dir, 'run.log');
    const child = runSh({ PORT: String(port), LARK_DATA: path.join(dir, 'var') }, log);
    assert.ok(await waitExit(child, 20000), 'run.sh did not exit');
    assert.equal(child.exitCode, 1);
    assert.match(fs.readFileSync(log, 'utf8'), new RegExp(`port ${port} is in use`));
    if (path.basename(build) === 'build') {
      // the same through make, which must fail too (make run builds the
      // release build, hence only in the release runs)
      const m = spawnSync('make', ['-s', 'run', `PORT=${port}`, `LARK_DATA=${path.join(dir, 'var2')}`],
        { cwd: top, encoding: 'utf8', timeout: 120000, env: { ...process.env, LARK_JWT_SECRET: secret } });
      assert.notEqual(m.status, 0, m.stdout + m.stderr);
      assert.match(m.stderr, new RegExp(`port ${port} is in use`));
    }
  });

  test(TESTS[1], async () => {
    const dir = tmpDir('lark-run-');
    cleanup(() => removeTmpDir(dir));
    const data = path.join(dir, 'var');
    const [p1, p2] = [await freePort(), await freePort()];
    const log1 = path.join(dir, 'one.log');
    const one = runSh({ PORT: String(p1), LARK_DATA: data }, log1);
    await serving(one, p1, log1);
    const log2 = path.join(dir, 'two.log');
    const two = runSh({ PORT: String(p2), LARK_DATA: data }, log2);
    assert.ok(await waitExit(two, 20000), 'the second run.sh did not exit');
    assert.equal(two.exitCode, 1);
    const text = fs.readFileSync(log2, 'utf8');
    assert.match(text, /another process \(pid \d+\) is using .*larkd\.sock/);
    assert.match(text, /run: larkd did not start/);
    // nothing of the second is left listening, the first still serves
    assert.equal((await request(`http://127.0.0.1:${p2}`, 'GET', '/v1/healthz').catch(() => ({ status: 'refused' }))).status, 'refused');
    assert.equal((await request(`http://127.0.0.1:${p1}`, 'GET', '/v1/healthz')).status, 200);
    const pid = Number(fs.readFileSync(path.join(data, 'larkd.sock.lock'), 'utf8'));
    assert.match(fs.readFileSync(log1, 'utf8'), new RegExp(`ready version=`));
    assert.ok(pid > 0);
  });

  test(TESTS[2], async () => {
    const dir = tmpDir('lark-run-');
    cleanup(() => removeTmpDir(dir));
    const data = path.join(dir, 'var');
    const port = await freePort();
    let log = path.join(dir, 'crash.log');
    let child = runSh({ PORT: String(port), LARK_DATA: data }, log);
    await serving(child, port, log);
    process.kill(Number(fs.readFileSync(path.join(data, 'larkd.sock.lock'), 'utf8')), 'SIGKILL');
    assert.ok(await waitExit(child, 20000), 'run.sh did not notice');
    assert.equal(child.exitCode, 1);
    assert.match(fs.readFileSync(log, 'utf8'), /run: larkd or lighttpd stopped on its own/);
    // started again, and ended with Ctrl-C: 0
    log = path.join(dir, 'clean.log');
    child = runSh({ PORT: String(port), LARK_DATA: data }, log);
    await serving(child, port, log);
    process.kill(-child.pid, 'SIGINT');
    assert.ok(await waitExit(child, 20000));
    assert.equal(child.exitCode, 0, fs.readFileSync(log, 'utf8'));
    assert.match(fs.readFileSync(log, 'utf8'), /lark stopped\./);
  });

  test(TESTS[3], async () => {
    const dir = tmpDir('lark-run-');
    cleanup(() => removeTmpDir(dir));
    const data = path.join(dir, 'var');
    const port = await freePort();
    const log = path.join(dir, 'cgi.log');
    const child = runSh({ PORT: String(port), LARK_DATA: data }, log, 'tools/run-cgi.sh');
    await serving(child, port, log);
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await request(base, 'GET', '/')).status, 200, 'www/');
    const r = await request(base, 'POST', '/v1/messages',
      { tok: token('run-cgi-a'), body: { to: 'run-cgi-b', body: 'hi', client_msg_id: 'r1' } });
    assert.equal(r.status, 201, r.body);
    const p = await request(base, 'GET', '/v1/poll?since=0&timeout=1', { tok: token('run-cgi-b') });
    assert.equal(p.json.events[0].data.body, 'hi');
    // no larkd daemon: the database is in LARK_DATA, there is no socket
    assert.ok(fs.existsSync(path.join(data, 'lark.db')));
    assert.ok(!fs.existsSync(path.join(data, 'larkd.sock')));
    process.kill(-child.pid, 'SIGINT');
    assert.ok(await waitExit(child, 20000));
    assert.equal(child.exitCode, 0, fs.readFileSync(log, 'utf8'));
    assert.match(fs.readFileSync(log, 'utf8'), /lark \(CGI\) stopped\./);
    assert.doesNotMatch(fs.readFileSync(log, 'utf8'), SANITIZER);
  });
}
