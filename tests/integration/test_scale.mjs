// test_scale.mjs - two larkd processes on one PostgreSQL database (issue 3,
// DESIGN.md "Scale beyond one machine"): a message sent through either
// reaches subscribers held by the other, in order, once; concurrent
// senders on both keep every seq gapless; a held stream is woken across
// processes by LISTEN/NOTIFY.
//
// PostgreSQL only: SQLite is one writer process per database file
// (docs/OPERATIONS.md), so there is no second process to scale to.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assert, skip, test, cleanup } from './lib/harness.mjs';
import { backend, build, exited, freePort, freshDb, removeTmpDir, secret, tmpDir, top, waitExit, waitFor } from './lib/stack.mjs';
import { Api, RawSSE, metrics, request } from './lib/client.mjs';
import { Follower, Pair, Sender, inbox, makeGroup, verify } from './lib/scale.mjs';

const SKIP = 'PostgreSQL only (several larkd on one database); runs with --backend=postgres';

async function pair() {
  const p = new Pair((await freshDb('postgres')).LARK_DB);
  cleanup(() => p.stop());
  return p.start();
}

const held = async (base, transport) => (await metrics(base))[`lark_held_connections{transport="${transport}"}`];

if (backend !== 'postgres') {
  skip('two larkd behind one lighttpd: sends through A, SSE and long-poll on B', SKIP);
  skip('20 concurrent senders on 2 processes into one group', SKIP);
  skip('a stream held by B is woken by a send through A (LISTEN/NOTIFY)', SKIP);
  skip('two `make run` instances (tools/run.sh), own PORT and LARK_DATA, one LARK_DB', SKIP);
} else {
  test('two larkd behind one lighttpd: sends through A, SSE and long-poll on B', async () => {
    const p = await pair();
    const senders = ['s-ann', 's-bob', 's-cid', 's-dee'];
    const sseUsers = ['r-sse1', 'r-sse2', 'r-sse3', 'r-sse4'];
    const pollUsers = ['r-poll1', 'r-poll2', 'r-poll3', 'r-poll4'];
    const conv = await makeGroup(p.split.url, [...senders, ...sseUsers, ...pollUsers]);
    const followers = [
      ...sseUsers.map((u) => new Follower(u, [p.split.url], 'sse')),
      ...pollUsers.map((u) => new Follower(u, [p.split.url], 'poll')),
    ];
    const following = followers.map((f) => f.run());
    // every subscriber is held by B before the first send
    await waitFor(async () => (await held(p.onlyB.url, 'sse')) === 4 && (await held(p.onlyB.url, 'poll')) === 4,
      'four SSE streams and four long-polls held by larkd B', 20000, 50);
    const sending = senders.map((u) => new Sender(u, [p.split.url], conv, 50));
    await Promise.all(sending.map((s) => s.run()));
    const n = await verify(p.split.url, conv, sending, followers);
    assert.equal(n, 200);
    // the routing really split the work: A stored every message, B held every reader
    const ma = await metrics(p.onlyA.url);
    const mb = await metrics(p.onlyB.url);
    assert.equal(ma.lark_messages_sent_total, 200, 'larkd A stored the messages');
    assert.equal(mb.lark_messages_sent_total, 0, 'larkd B stored none');
    assert.equal(ma['lark_held_total{transport="sse"}'], 0, 'larkd A held no stream');
    for (const s of sending) assert.deepEqual([...s.statuses.keys()], [201], `${s.user}: every send 201 at once`);
    for (const f of followers) {
      assert.equal(f.duplicates, 0, `${f.user}: nothing delivered twice`);
      if (f.transport === 'sse') assert.equal(f.connections, 1, `${f.user}: one stream throughout`);
      f.stop();
    }
    await Promise.all(following);
  }, { timeout: 240000 });

  test('20 concurrent senders on 2 processes into one group', async () => {
    const p = await pair();
    const users = Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    const conv = await makeGroup(p.onlyA.url, users, 'twenty');
    // half send through larkd A, half through larkd B, all at once
    const sending = users.map((u, i) => new Sender(u, [i % 2 ? p.onlyB.url : p.onlyA.url], conv, 25));
    await Promise.all(sending.map((s) => s.run()));
    const seqs = sending.flatMap((s) => s.acked.map((a) => a.message.seq)).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: 500 }, (_, i) => i + 1), 'acknowledged seqs unique and gapless');
    const ma = await metrics(p.onlyA.url);
    const mb = await metrics(p.onlyB.url);
    assert.equal(ma.lark_messages_sent_total + mb.lark_messages_sent_total, 500);
    assert.ok(ma.lark_messages_sent_total > 0 && mb.lark_messages_sent_total > 0, 'both processes stored messages');
    await verify(p.onlyB.url, conv, sending, []);
    // every member's inbox: gapless, the group's creation then all 500 in seq order
    for (const u of users) {
      const evs = await inbox(u === users[0] ? p.onlyA.url : p.onlyB.url, u);
      assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1), `${u}: inbox gapless`);
      const msgs = evs.filter((e) => e.type === 'message' && e.data.conversation_id === conv).map((e) => e.data.seq);
      assert.deepEqual(msgs, seqs, `${u}: every message once, in order`);
    }
  }, { timeout: 240000 });

  test('a stream held by B is woken by a send through A (LISTEN/NOTIFY)', async () => {
    const p = await pair();
    const alice = new Api(p.split.url, 'w-alice');
    const bob = new Api(p.split.url, 'w-bob');
    const sse = new RawSSE(p.split.url, '/v1/events?since=0', { tok: bob.tok });
    cleanup(() => sse.close());
    await sse.ready;
    assert.equal(sse.status, 200);
    await waitFor(async () => (await held(p.onlyB.url, 'sse')) === 1, 'the stream held by B');
    let t0 = Date.now();
    const r = await alice.send('w-bob', 'wake up');
    assert.equal(r.status, 201);
    // delivery is what is asserted; the latency is printed, never asserted
    await sse.until((x) => x.stored().length === 1, 'the event on the stream held by B', 20000);
    console.log(`     (SSE on B woken ${Date.now() - t0} ms after the 201 from A)`);
    assert.equal(sse.stored()[0].json.data.id, r.json.id);

    const poll = bob.poll('?since=1&timeout=50');
    await waitFor(async () => (await held(p.onlyB.url, 'poll')) === 1, 'the long-poll held by B');
    t0 = Date.now();
    const r2 = await alice.send('w-bob', 'and again');
    const got = await poll;
    console.log(`     (long-poll on B answered ${Date.now() - t0} ms after the send through A)`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.events.map((e) => e.data.id), [r2.json.id]);
    await sse.until((x) => x.stored().length === 2, 'the second event on the stream');
    // and the other way round: B's own write wakes a stream held by A
    const onA = new RawSSE(p.onlyA.url, '/v1/events?since=2', { tok: bob.tok });
    cleanup(() => onA.close());
    await onA.ready;
    await waitFor(async () => (await held(p.onlyA.url, 'sse')) === 1, 'a stream held by A');
    const r3 = await new Api(p.onlyB.url, 'w-alice').send('w-bob', 'through B');
    await onA.until((x) => x.stored().length === 1, 'the event on the stream held by A', 20000);
    assert.equal(onA.stored()[0].json.data.id, r3.json.id);
  });

  // tools/run.sh is what `make run` starts after building; run as its own
  // process group so that larkd and lighttpd go with it on every path.
  const runs = new Set();
  process.on('exit', () => {
    for (const c of runs) if (!exited(c)) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  });

  test('two `make run` instances (tools/run.sh), own PORT and LARK_DATA, one LARK_DB', async () => {
    const db = (await freshDb('postgres')).LARK_DB;
    const inst = [];
    for (const name of ['one', 'two']) {
      const dir = tmpDir(`lark-run-${name}-`);
      const port = await freePort();
      const log = path.join(dir, 'run.log');
      const out = fs.openSync(log, 'a');
      const child = spawn(path.join(top, 'tools/run.sh'), [], {
        cwd: top,
        detached: true,
        stdio: ['ignore', out, out],
        env: {
          ...process.env, PORT: String(port), LARK_DATA: dir, LARK_DB: db, BUILD: build,
          LARK_JWT_SECRET: secret, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
        },
      });
      fs.closeSync(out);
      runs.add(child);
      inst.push({ dir, log, child, url: `http://127.0.0.1:${port}` });
    }
    cleanup(async () => {
      try {
        for (const x of inst) if (!exited(x.child)) process.kill(-x.child.pid, 'SIGTERM');
        for (const x of inst) {
          if (!(await waitExit(x.child, 20000))) process.kill(-x.child.pid, 'SIGKILL');
          runs.delete(x.child);
          const text = fs.readFileSync(x.log, 'utf8');
          assert.doesNotMatch(text, /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/, `${x.log}: sanitizer report`);
        }
      } finally {
        for (const x of inst) removeTmpDir(x.dir);
      }
    });
    // both start at once: `larkd --migrate` in each races on the empty database
    for (const x of inst) {
      await waitFor(async () => {
        if (exited(x.child)) throw new Error(`tools/run.sh exited:\n${fs.readFileSync(x.log, 'utf8').slice(-3000)}`);
        return (await request(x.url, 'GET', '/v1/healthz').catch(() => ({}))).status === 200;
      }, `make run on ${x.url}`, 30000, 100);
    }
    const [one, two] = inst.map((x) => x.url);
    const sse = new RawSSE(two, '/v1/events?since=0', { tok: new Api(two, 'mr-bob').tok });
    cleanup(() => sse.close());
    await sse.ready;
    const r = await new Api(one, 'mr-alice').send('mr-bob', 'from instance one');
    assert.equal(r.status, 201, r.body);
    await sse.until((x) => x.stored().length === 1, 'the message on instance two', 20000);
    assert.equal(sse.stored()[0].json.data.id, r.json.id);
    const back = await new Api(two, 'mr-bob').send('mr-alice', 'from instance two');
    const poll = await new Api(one, 'mr-alice').poll('?since=1&timeout=10');
    assert.deepEqual(poll.json.events.map((e) => e.data.id), [back.json.id]);
  });
}
