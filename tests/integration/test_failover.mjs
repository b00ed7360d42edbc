// test_failover.mjs - high availability on PostgreSQL (issue 17): a
// primary with a synchronous streaming standby in another zone, two larkd
// hosts, live clients on every transport and lark-push, then the primary
// dies and the standby is promoted (by the test, as a script or an
// operator would: pg_ctl promote). lib/zones.mjs draws the zones.
//
// What must hold, whatever the moment of the failure:
//   - every acknowledged message (201, a WebSocket "sent") is on the new
//     primary, once, with gapless conversation seqs; a send in flight is
//     answered 201/sent or an error (503 + Retry-After, a db_unavailable
//     error line, or a connection the failure cut), and its retry with the
//     same client_msg_id is stored exactly once (200 when the first attempt
//     had been stored after all);
//   - every SSE, long-poll and WebSocket subscriber gets every message
//     once, in order, its inbox gapless, without a restart of larkd;
//   - lark-push sends every pending notification: for each device the
//     counts of its notifications add up to the messages (none lost, none
//     doubled; a job is only repeated, at least once, by another daemon
//     after the lease of a daemon that died);
// and the suite prints the time from the primary's death to the first 201
// of a send made after it (docs/BENCHMARKS.md "Failover").
//
// PostgreSQL only, and needs root (ip netns); skipped with the reason
// otherwise. Every server, namespace and directory is removed on every
// path (harness cleanups, exit hooks, and the next run's sweeps).

import path from 'node:path';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { backend, sleep, waitFor } from './lib/stack.mjs';
import { Api, metrics } from './lib/client.mjs';
import { Follower, Sender, WsSender, makeGroup, verify } from './lib/scale.mjs';
import { Net, netnsAvailable } from './lib/netns.mjs';
import { PgCluster } from './lib/pg.mjs';
import { PushRig, apnsToken, fcmToken } from './lib/push.mjs';
import { HOSTS, appHost, multiHostUri, pushHome } from './lib/zones.mjs';

const NAME_KILL = 'kill -9 of the primary, the synchronous standby promoted: nothing acknowledged lost, every stream and lark-push resume';

/** larkd settings of these suites: notifications due 300 ms after a message. */
const APP_ENV = { LARK_PUSH_WINDOW_MS: '300' };
/** lark-push: a short lease, so that a claim lost in the failure comes back soon. */
const PUSH_ENV = { LARK_PUSH_TIMEOUT_MS: '3000', LARK_PUSH_LEASE_MS: '8000' };

/** The four hosts of lib/zones.mjs on a new bridge. */
async function zones() {
  const net = await new Net().up();
  cleanup(() => net.down());
  const h = {};
  for (const name of ['db1', 'db2', 'a', 'b']) h[name] = await net.addHost(name, HOSTS[name]);
  return { net, h };
}

/**
 * A primary in zone a with database "lark" and a synchronous standby of
 * it in zone b (synchronous_standby_names = '*': a commit returns once the
 * standby has it; set once the standby exists, or creating the database
 * would wait for it). The standby's own setting stays empty: promoted, it
 * takes writes alone.
 */
async function primaryAndStandby(net, h) {
  const hba = [`host all all ${net.subnet}.0/24 trust`, `host replication all ${net.subnet}.0/24 trust`];
  const primary = await new PgCluster({ listen: h.db1.addr, port: 5432, wrap: h.db1.wrap, hba }).start();
  cleanup(() => primary.destroy());
  await primary.createDb('lark');
  const standby = await primary.standby({ listen: h.db2.addr, port: 5432, wrap: h.db2.wrap });
  cleanup(() => standby.destroy());
  await primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'");
  await primary.psql('SELECT pg_reload_conf()');
  await waitFor(async () => (await primary.psql('SELECT sync_state FROM pg_stat_replication')).trim() === 'sync',
    'the standby streaming, synchronous', 30000, 100);
  return { primary, standby };
}

/** Offline users with a device each (half APNs, half FCM); returns [{ user, platform, token }]. */
async function devices(base, prefix, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const user = `${prefix}${i}`;
    const platform = i % 2 ? 'fcm' : 'apns';
    const tok = platform === 'apns' ? apnsToken(user) : fcmToken(user);
    const r = await new Api(base, user).post('/v1/devices', { platform, token: tok, app: 'com.example.lark' });
    assert.equal(r.status, 201, r.body);
    out.push({ user, platform, token: tok });
  }
  return out;
}

/** The notifications a device got: [{ job, count, seq, at }]. */
function notificationsOf(rig, d) {
  const fake = d.platform === 'apns' ? rig.apns : rig.fcm;
  return fake.for(d.token).map((x) => {
    const data = d.platform === 'apns' ? x.payload.lark : x.payload.message.data;
    return { job: data.job, count: Number(data.count), seq: Number(data.seq), at: x.at };
  });
}

/**
 * lark-push lost nothing: each device's notification counts add up to the
 * n messages of the conversation (bounded wait), and the last one names
 * the last message. Returns the job ids notified more than once, with the
 * times of their notifications.
 */
async function pushSettled(rig, devs, n, limit = 45000) {
  const total = (d) => notificationsOf(rig, d).reduce((a, x) => a + x.count, 0);
  await waitFor(() => devs.every((d) => total(d) >= n), `every device notified of all ${n} messages`, limit, 100);
  await sleep(1000); // a notification sent twice would arrive by now
  const doubled = [];
  for (const d of devs) {
    const got = notificationsOf(rig, d);
    assert.equal(Math.max(...got.map((x) => x.seq)), n, `${d.user}: notified of the last message`);
    const byJob = new Map();
    for (const x of got) byJob.set(x.job, [...(byJob.get(x.job) || []), x]);
    for (const [job, xs] of byJob) if (xs.length > 1) doubled.push({ user: d.user, job, at: xs.map((x) => x.at), count: xs[0].count });
    const extra = [...byJob.values()].filter((xs) => xs.length > 1).reduce((a, xs) => a + xs[0].count * (xs.length - 1), 0);
    assert.equal(total(d) - extra, n, `${d.user}: every message in exactly one job`);
  }
  return doubled;
}

/** Every push job finished (its outcome recorded: bounded wait), none dead. */
async function pushDrained(pg) {
  const left = () => pg.psql('SELECT id, sealed, attempts, due_at, last_error FROM push_jobs', 'lark');
  await waitFor(async () => (await left()).trim() === '', 'no push job left', 20000, 200)
    .catch(async (e) => { throw new Error(`${e.message}: ${await left()}`); });
  assert.equal((await pg.psql('SELECT count(*) FROM push_dead', 'lark')).trim(), '0', 'no push job dead');
}

/** Senders' answers: only those a failure may give; returns a summary line. */
function checkAnswers(senders, wsSenders, allowed = [200, 201, 503]) {
  for (const s of senders) {
    const bad = [...s.statuses.keys()].filter((st) => !allowed.includes(st));
    assert.deepEqual(bad, [], `${s.user}: only ${allowed.join(', ')}; got ${s.summary()}`);
    assert.equal(s.no503RetryAfter, 0, `${s.user}: every 503 carried Retry-After`);
  }
  // a session whose catch-up read failed is closed (API.md: any close
  // means reconnect), and a new one refused while the database is away
  const wsAllowed = ['sent', 'error:db_unavailable', 'closed', 'auth:db_unavailable'];
  for (const s of wsSenders) {
    const bad = [...s.statuses.keys()].filter((st) => !wsAllowed.includes(st));
    assert.deepEqual(bad, [], `${s.user}: only ${wsAllowed.join(', ')}; got ${s.summary()}`);
  }
  const acked = [...senders, ...wsSenders].flatMap((s) => s.acked);
  const retried = acked.filter((a) => a.tries.length > 1);
  const foundStored = acked.filter((a) => a.status === 200);
  return `${acked.length} acknowledged, ${retried.length} after a retry, ${foundStored.length} of them found stored (200)`;
}

/**
 * The first acknowledgement of a send begun after t (its created_at, set
 * by larkd when the request arrived, is later): ms from t, or null.
 */
function firstAckAfter(senders, t) {
  const after = senders.flatMap((s) => s.acked).filter((a) => Date.parse(a.message.created_at) > t);
  return after.length ? Math.min(...after.map((a) => a.at)) - t : null;
}

/** The longest time a sender went without an acknowledgement. */
function longestGap(senders) {
  let worst = 0;
  for (const s of senders) for (let i = 1; i < s.acked.length; i++) worst = Math.max(worst, s.acked[i].at - s.acked[i - 1].at);
  return worst;
}

/** Wait until `n` more sends than now are acknowledged (bounded). */
async function ackedMore(senders, n, what, limit = 60000) {
  const count = () => senders.reduce((a, s) => a + s.acked.length, 0);
  const want = count() + n;
  await waitFor(() => count() >= want, `${n} more acknowledged sends ${what}`, limit, 10);
}

if (backend !== 'postgres') {
  skip(NAME_KILL, 'PostgreSQL only (a primary and its standby); runs with --backend=postgres');
} else if (!netnsAvailable()) {
  skip(NAME_KILL, 'needs root and iproute2 for ip netns (CI runs as root)');
} else {
  test(NAME_KILL, async () => {
    const { net, h } = await zones();
    const { primary, standby } = await primaryAndStandby(net, h);
    const uri = multiHostUri([h.db1.addr, h.db2.addr]);
    const apps = [appHost(h.a, uri, net.addr(1), APP_ENV), appHost(h.b, uri, net.addr(1), APP_ENV)];
    cleanup(async () => {
      const errors = [];
      for (const x of apps) await x.stop().catch((e) => errors.push(e));
      if (errors.length) throw errors[0];
    });
    await Promise.all(apps.map((x) => x.larkd.start())); // their migrations race
    await Promise.all(apps.map((x) => x.web.start()));
    const [A, B] = apps.map((x) => x.url);

    const home = pushHome(uri);
    cleanup(() => home.remove());
    const rig = new PushRig(home, PUSH_ENV);
    cleanup(() => rig.stop());
    await rig.startFakes({ apnsDelayMs: 30, fcmDelayMs: 30 });
    await rig.startDaemon();

    const devs = await devices(A, 'f-push', 6);
    const httpUsers = ['f-sa1', 'f-sa2', 'f-sb1', 'f-sb2'];
    const wsUsers = ['f-wa', 'f-wb'];
    const readers = { a: ['f-a-sse', 'f-a-poll', 'f-a-ws'], b: ['f-b-sse', 'f-b-poll', 'f-b-ws'] };
    const conv = await makeGroup(A, [...httpUsers, ...wsUsers, ...readers.a, ...readers.b, ...devs.map((d) => d.user)]);
    const tr = (u) => u.split('-').pop();
    const followers = [
      ...readers.a.map((u) => new Follower(u, [A, B], tr(u))),
      ...readers.b.map((u) => new Follower(u, [B, A], tr(u))),
    ];
    const following = followers.map((f) => f.run(240000));
    cleanup(() => followers.forEach((f) => f.stop()));
    for (const [base, n] of [[A, 'a'], [B, 'b']]) {
      await waitFor(async () => {
        const m = await metrics(base);
        return ['sse', 'poll', 'ws'].every((t) => m[`lark_held_connections{transport="${t}"}`] === 1);
      }, `host ${n} holding its three readers`, 20000, 50);
    }
    const on = (u) => (/-(sa|wa)/.test(u) ? [A, B] : [B, A]);
    const senders = httpUsers.map((u) => new Sender(u, on(u), conv, 5000));
    const wsSenders = wsUsers.map((u) => new WsSender(u, on(u), conv, 5000));
    const everyone = [...senders, ...wsSenders];
    cleanup(() => everyone.forEach((s) => s.stop()));
    let sendError = null;
    const sends = Promise.all(everyone.map((s) => s.run(180000))).catch((e) => { sendError = e; });

    await ackedMore(everyone, 150, 'before the failure');
    const t0 = Date.now();
    await primary.kill9();
    const tKilled = Date.now() - t0; // every process of it gone
    await standby.promote();
    const tPromoted = Date.now() - t0;
    await ackedMore(everyone, 150, 'after the promotion');
    everyone.forEach((s) => s.stop());
    await sends;
    assert.equal(sendError, null);

    assert.equal((await standby.psql('SELECT pg_is_in_recovery()')).trim(), 'f', 'the standby is the primary now');
    const answers = checkAnswers(senders, wsSenders);
    const n = await verify(B, conv, everyone, followers, { catchUp: 60000 });
    const doubled = await pushSettled(rig, devs, n);
    assert.deepEqual(doubled, [], 'no notification sent twice (one lark-push, which never died)');
    await pushDrained(standby);
    for (const x of apps) assert.ok(x.larkd.running(), `${x.host.name}'s larkd served on without a restart`);
    for (const f of followers) {
      const bad = [...f.statuses.keys()].filter((st) => st !== 503);
      assert.deepEqual(bad, [], `${f.user}: reconnections met only 503s, no errors or hangs`);
      // API.md: a held SSE stream is kept, or told to reconnect, never just cut
      if (f.transport === 'sse') assert.equal(f.abruptEnds, 0, `${f.user}: no stream ended without event: reconnect`);
    }

    const first = firstAckAfter(everyone, t0 + tKilled);
    console.log(`     (${n} messages; ${answers}; primary gone after ${tKilled} ms, standby promoted after ${tPromoted} ms; ` +
      `first 201 of a send begun after that: ${first} ms; longest a sender waited: ${longestGap(everyone)} ms)`);
    console.log(`     (senders: ${everyone.map((s) => `${s.user} ${s.summary()}`).join(', ')})`);
    console.log(`     (readers: ${followers.map((f) => `${f.user} ${f.connections} conn ${f.reconnectEvents} told ${f.abruptEnds} cut ${JSON.stringify(Object.fromEntries(f.statuses))}`).join(", ")})`);
    followers.forEach((f) => f.stop());
    await Promise.all(following);
  }, { timeout: 300000 });
}
