// test_pgrestart.mjs - larkd survives its database (issue 3, "Survive the
// database"): PostgreSQL restarted under load (pg_ctl restart -m fast, then
// -m immediate, a crash), then stopped for a while.
// Senders keep sending, retrying the same client_msg_id after an error or a
// 503; SSE and long-poll readers on the other process keep following.
// Afterwards: no acknowledged message lost or doubled, seqs gapless, both
// larkd still the processes they were (recovered without a restart),
// requests during the outage answered 503 with Retry-After (never a hang),
// held clients kept or told to reconnect, and all of them caught up.
//
// PostgreSQL only (the database restarted is PostgreSQL). The cluster is
// this suite's own, so restarting it disturbs no other suite.

import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { backend, sleep, waitFor } from './lib/stack.mjs';
import { Api, request, token } from './lib/client.mjs';
import { Follower, Pair, Sender, makeGroup, verify } from './lib/scale.mjs';
import { PgCluster } from './lib/pg.mjs';

const SKIP = 'PostgreSQL only (restarts the PostgreSQL server); runs with --backend=postgres';

/** Wait until at least n more messages were acknowledged than `from` (bounded). */
async function ackedAtLeast(senders, n, what, limit = 60000) {
  const count = () => senders.reduce((a, s) => a + s.acked.length, 0);
  const want = count() + n;
  await waitFor(() => count() >= want, `${n} more acknowledged sends ${what}`, limit, 20);
}

/** A request that must be answered 503 with Retry-After while the database is down. */
async function outage(base, method, path, body) {
  const r = await request(base, method, path, { tok: token('o-probe'), body, timeout: 20000 })
    .catch((e) => ({ status: 0, body: String(e) }));
  assert.equal(r.status, 503, `${method} ${path} during the outage: ${r.status} ${r.body}`);
  assert.ok(Number(r.headers['retry-after']) >= 1, `${method} ${path}: Retry-After on the 503`);
  assert.ok(r.json && r.json.error && r.json.error.code, `${method} ${path}: a JSON error body`);
  return r;
}

if (backend !== 'postgres') {
  skip('PostgreSQL restarted under load: nothing acknowledged lost, larkd recovers', SKIP);
} else {
  test('PostgreSQL restarted under load: nothing acknowledged lost, larkd recovers', async () => {
    const pg = await new PgCluster().start();
    cleanup(() => pg.destroy());
    const p = new Pair(pg.uri(await pg.createDb('lark')));
    cleanup(() => p.stop());
    await p.start();
    const pids = [p.a.pid, p.b.pid];

    const senders = ['p-s1', 'p-s2', 'p-s3', 'p-s4'];
    const readers = ['p-sse1', 'p-sse2', 'p-sse3', 'p-poll1', 'p-poll2', 'p-poll3'];
    const conv = await makeGroup(p.split.url, [...senders, ...readers]);
    const followers = readers.map((u) => new Follower(u, [p.split.url], u.includes('sse') ? 'sse' : 'poll'));
    const following = followers.map((f) => f.run(240000));
    // bounded: at most 2,000 messages each, stopped once the phases below are done
    const sending = senders.map((u) => new Sender(u, [p.split.url], conv, 2000));
    const sends = sending.map((s) => s.run(180000));
    let sendError = null;
    Promise.all(sends).catch((e) => { sendError = e; });

    // 1. pg_ctl restart -m fast while the senders send
    await ackedAtLeast(sending, 100, 'before the restart');
    await pg.restart('fast');
    await ackedAtLeast(sending, 100, 'after the restart');
    // ...and -m immediate: a crash of the server; what was committed comes back from the WAL
    await pg.restart('immediate');
    await ackedAtLeast(sending, 100, 'after the crash and recovery');

    // 2. a real outage: every request that needs the database gets 503 + Retry-After
    await pg.stop('fast');
    await outage(p.split.url, 'GET', '/v1/healthz');
    await outage(p.split.url, 'POST', '/v1/messages', { to: 'o-other', body: 'x', client_msg_id: 'during-outage' });
    await outage(p.split.url, 'GET', `/v1/conversations/${conv}/messages?after=0`);
    await outage(p.split.url, 'GET', '/v1/poll?since=0&timeout=0');
    await outage(p.split.url, 'GET', '/v1/events?since=0');
    await outage(p.onlyA.url, 'GET', '/v1/conversations');
    const before = sending.reduce((a, s) => a + s.acked.length, 0);
    await sleep(1500); // the senders meet the outage for a while
    assert.equal(sending.reduce((a, s) => a + s.acked.length, 0), before, 'nothing acknowledged while the database is down');
    await pg.startAgain();
    await waitFor(async () => (await request(p.onlyA.url, 'GET', '/v1/healthz')).status === 200 &&
      (await request(p.onlyB.url, 'GET', '/v1/healthz')).status === 200, 'both larkd healthy again', 30000, 100);
    // the send that met the outage succeeds on a retry, once
    const retried = await new Api(p.split.url, 'o-probe').post('/v1/messages',
      { to: 'o-other', body: 'x', client_msg_id: 'during-outage' });
    assert.equal(retried.status, 201, `the send refused during the outage is stored on retry: ${retried.body}`);
    await ackedAtLeast(sending, 100, 'after the outage');

    sending.forEach((s) => s.stop());
    await Promise.all(sends);
    assert.equal(sendError, null);
    const n = await verify(p.split.url, conv, sending, followers, { catchUp: 60000 });
    console.log(`     (${n} messages; readers: ${followers.map((f) => `${f.user} ${f.connections} conn` +
      `${f.reconnectEvents ? `, ${f.reconnectEvents} told to reconnect` : ''}`).join('; ')})`);
    console.log(`     (senders: ${sending.map((s) => `${s.user} ${s.summary()}`).join(', ')})`);
    assert.ok(sending.some((s) => s.statuses.get(503) > 0), 'the senders met the outage (503s)');
    for (const s of sending) {
      const bad = [...s.statuses.keys()].filter((st) => ![200, 201, 503].includes(st));
      assert.deepEqual(bad, [], `${s.user}: only 201, 200 (retry) and 503 answers; got ${s.summary()}`);
      assert.equal(s.no503RetryAfter, 0, `${s.user}: every 503 carried Retry-After`);
    }
    for (const f of followers) {
      const bad = [...f.statuses.keys()].filter((st) => st !== 503);
      assert.deepEqual(bad, [], `${f.user}: reconnects met only 503s, no errors or hangs`);
      // API.md: held clients are kept, or told to reconnect; a stream is never just cut
      assert.equal(f.abruptEnds, 0, `${f.user}: no stream ended without event: reconnect`);
    }
    assert.deepEqual([p.a.pid, p.b.pid], pids);
    assert.ok(p.a.running() && p.b.running(), 'both larkd recovered without a restart');
    followers.forEach((f) => f.stop());
    await Promise.all(following);
  }, { timeout: 300000 });
}
