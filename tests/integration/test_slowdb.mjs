// test_slowdb.mjs - the hub never waits on the database (DESIGN.md "The
// delivery path, second design"; issue 10): with the database slow, locked
// or unreachable, held SSE streams keep getting their ping events on time
// and ephemeral events (typing) as soon as the handler that sends them
// runs - while new users connect (each new user costs a read and a
// presence write, which the hub must hand to other threads).
//
//   PostgreSQL: larkd talks to the database through a TCP proxy
//     (lib/dbproxy.mjs) that first adds 200 ms to every chunk each way,
//     then stops forwarding altogether (a host that stopped answering).
//   SQLite: another process holds the database's write lock (as an
//     operator's sqlite3 shell would), so every write waits out its busy
//     timeout (5 s) - reads, in WAL mode, still go through.
//
// "On time" has generous bounds (keep-alive every 1 s; no gap over 2.5 s)
// that a hub blocked in a database call breaks by seconds: the old hub
// read every woken connection's inbox and wrote presence itself.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { assert, test } from './lib/harness.mjs';
import { Stack, backend, sleep, track, waitFor } from './lib/stack.mjs';
import { Api, RawSSE } from './lib/client.mjs';
import { DbProxy } from './lib/dbproxy.mjs';
import { sharedCluster } from './lib/pg.mjs';

let s;
let proxy = null;
let locker = null;

/** Longest wait between consecutive pings on sse since index `from`. */
function pingGaps(sse, from) {
  const t = sse.pingTimes.slice(from);
  let worst = 0;
  for (let i = 1; i < t.length; i++) worst = Math.max(worst, t[i] - t[i - 1]);
  return { worst, count: t.length };
}

/** Record when each ping arrives (to within the 20 ms of the sampling). */
function timePings(sse) {
  sse.pingTimes = [];
  sse.timer = setInterval(() => {
    while (sse.pingTimes.length < sse.pings.length) sse.pingTimes.push(Date.now());
  }, 20);
  return sse;
}

test('start with 1 s pings and presence, the database reachable', async () => {
  const env = { LARK_SSE_KEEPALIVE: '1', LARK_PRESENCE_INTERVAL: '1', LARK_PRESENCE_TTL: '3' };
  if (backend === 'postgres') {
    const cluster = await sharedCluster();
    const db = await cluster.createDb();
    proxy = await new DbProxy({ path: path.join(cluster.dir, `.s.PGSQL.${cluster.port}`) }).start();
    env.LARK_DB = `postgresql://postgres@127.0.0.1:${proxy.port}/${db}`;
  }
  s = await new Stack(env).start();
});

/** The database turns slow/locked/unreachable; undo() brings it back. */
async function impair(mode) {
  if (backend === 'postgres') {
    proxy.set(mode);
    return async () => proxy.set('pass');
  }
  // SQLite: hold the write lock from another process
  locker = spawn('sqlite3', [path.join(s.dir, 'lark.db')], { stdio: ['pipe', 'pipe', 'pipe'] });
  track(locker);
  let out = '';
  locker.stdout.on('data', (d) => { out += d; });
  locker.stdin.write('PRAGMA busy_timeout = 10000;\nBEGIN IMMEDIATE;\nSELECT \'locked\';\n');
  await waitFor(() => out.includes('locked'), 'the sqlite3 shell to hold the write lock', 10000);
  return async () => {
    locker.stdin.end('ROLLBACK;\n.quit\n');
    await waitFor(() => locker.exitCode !== null, 'the sqlite3 shell to exit', 10000);
  };
}

async function streamsKeepTime(mode) {
  const a = new Api(s.url, `sd-a-${mode}`);
  const b = new Api(s.url, `sd-b-${mode}`);
  const conv = (await a.send(`sd-b-${mode}`, 'hi')).json.conversation_id;
  const sse = timePings(new RawSSE(s.url, '/v1/events', { tok: a.tok }));
  await sse.until((x) => x.pings.length >= 2, 'pings before', 10000);
  const undo = await impair(mode);
  const from = sse.pingTimes.length;
  const t0 = Date.now();
  // new users arrive meanwhile: a catch-up read and a presence write each
  const others = [];
  for (let i = 0; i < 8; i++) {
    const o = new RawSSE(s.url, '/v1/events', { tok: new Api(s.url, `sd-n${i}-${mode}`).tok });
    o.ready.catch(() => {}); // black-holed, they may still wait for their head when closed
    others.push(o);
  }
  let typingAfter = null;
  if (mode !== 'blackhole') {
    // the typing handler itself waits for the database; its event must
    // reach the stream as soon as the handler sends it, not after the hub
    // has waited for something else
    const r = await b.post(`/v1/conversations/${conv}/typing`);
    assert.equal(r.status, 204, r.body);
    const answered = Date.now();
    await sse.until((x) => x.events.some((e) => e.event === 'typing'), 'typing', 10000);
    typingAfter = Date.now() - answered;
  }
  while (Date.now() - t0 < 6000) await sleep(100);
  const gaps = pingGaps(sse, from);
  await undo();
  console.log(`     (${mode}: ${gaps.count} pings in ${Date.now() - t0} ms, longest gap ${gaps.worst} ms` +
    (typingAfter === null ? '' : `, typing ${typingAfter} ms after its 204`) + ')');
  assert.ok(gaps.count >= 4, `pings kept coming: ${gaps.count} in 6 s`);
  assert.ok(gaps.worst <= 2500, `no ping waited on the database: longest gap ${gaps.worst} ms`);
  if (typingAfter !== null) assert.ok(typingAfter <= 1000, `typing ${typingAfter} ms after the 204`);
  // back to normal: live messages flow again, the new streams too
  await b.send(`sd-a-${mode}`, 'after');
  await sse.until((x) => x.events.some((e) => e.json && e.json.data && e.json.data.body === 'after'),
    'a message after recovery', 20000);
  clearInterval(sse.timer);
  sse.close();
  for (const o of others) o.close();
}

if (backend === 'postgres') {
  test('PostgreSQL 200 ms slower per chunk: pings on time, typing at once', async () => {
    await streamsKeepTime('slow');
  });
  test('PostgreSQL unreachable (black-holed): pings on time, and everything recovers', async () => {
    await streamsKeepTime('blackhole');
  });
} else {
  test('SQLite write-locked by another process: pings on time, typing at once', async () => {
    await streamsKeepTime('locked');
  });
}

test('stop', async () => {
  await s.stop();
  if (proxy) await proxy.stop();
});
