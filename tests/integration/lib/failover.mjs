// failover.mjs - the workload and the checks of the failover suites
// (test_failover.mjs, test_patroni.mjs; issue 17), on the zones of
// lib/zones.mjs, whatever makes the new primary.
//
//   Workload  two app hosts (a, b) on one LARK_DB naming both database
//             hosts; lark-push daemons in the root namespace against the
//             fake APNs and FCM; offline users with devices; one group;
//             SSE, long-poll and WebSocket readers held by each host; HTTP
//             and WebSocket senders on each host, each retrying its
//             client_msg_id after an error, moving to the other host after
//             a failure (lib/scale.mjs).
//   checks    every acknowledged message stored once, in order, delivered
//             to every reader once (scale.mjs verify()); only the answers
//             a failover may give; every device notified of every message
//             in exactly one job, a job repeated only after the lease of a
//             daemon that died; no push job left.
//
// Every wait is bounded; everything started is stopped by the harness's
// cleanups, in reverse order.

import fs from 'node:fs';
import path from 'node:path';
import { assert, cleanup } from './harness.mjs';
import { sleep, waitFor } from './stack.mjs';
import { Api, metrics } from './client.mjs';
import { Follower, Sender, WsSender, makeGroup, verify } from './scale.mjs';
import { Net } from './netns.mjs';
import { PushRig, apnsToken, fcmToken } from './push.mjs';
import { HOSTS, appHost, pushHome } from './zones.mjs';

/** larkd settings of these suites: notifications due 300 ms after a message. */
export const APP_ENV = { LARK_PUSH_WINDOW_MS: '300' };
/**
 * Server keep-alives of 1 s, for suites where a host vanishes: its
 * clients notice the silence after 2 x 1 s + 1 s (CLIENT_IDLE_MS), as
 * lark.js does after 2 x 15 s + 5 s with the default keep-alive.
 */
export const QUICK_KEEPALIVE = { LARK_SSE_KEEPALIVE: '1', LARK_POLL_TRICKLE: '1' };
export const CLIENT_IDLE_MS = 3000;
/** lark-push: a short lease, so that a claim lost in the failure comes back soon. */
const PUSH_ENV = { LARK_PUSH_TIMEOUT_MS: '3000', LARK_PUSH_LEASE_MS: '8000' };

/** The hosts of lib/zones.mjs (names) on a new bridge; removed by a cleanup. */
export async function zones(names = ['db1', 'db2', 'a', 'b']) {
  const net = await new Net().up();
  cleanup(() => net.down());
  const h = {};
  for (const name of names) h[name] = await net.addHost(name, HOSTS[name]);
  return { net, h };
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

/**
 * Start the workload against uri and let it run. opts: appEnv (larkd
 * settings), idleMs (readers and WebSocket senders give a silent host up
 * after that), timeout (HTTP senders likewise), daemons (lark-push
 * processes). Resolves { apps, A, B, rig, devs, conv, followers, senders,
 * wsSenders, everyone }; cleanups stop it all.
 */
export async function startWorkload(net, h, uri, { appEnv = APP_ENV, idleMs = 0, timeout = 15000, daemons = 1 } = {}) {
  const w = { apps: [appHost(h.a, uri, net.addr(1), appEnv), appHost(h.b, uri, net.addr(1), appEnv)] };
  w.stopped = new Set(); // apps a test killed: stopped with SIGKILL, only a sanitizer report counts
  cleanup(async () => {
    const errors = [];
    for (const x of w.apps) await x.stop({ killed: w.stopped.has(x) }).catch((e) => errors.push(e));
    if (errors.length) throw errors[0];
  });
  await Promise.all(w.apps.map((x) => x.larkd.start())); // their migrations race
  await Promise.all(w.apps.map((x) => x.web.start()));
  [w.A, w.B] = w.apps.map((x) => x.url);
  const { A, B } = w;

  const home = pushHome(uri);
  cleanup(() => home.remove());
  w.rig = new PushRig(home, PUSH_ENV);
  cleanup(() => w.rig.stop());
  await w.rig.startFakes({ apnsDelayMs: 30, fcmDelayMs: 30 });
  for (let i = 1; i <= daemons; i++) await w.rig.startDaemon(path.join(home.dir, `lark-push-${i}.stderr`));

  w.devs = await devices(A, 'f-push', 6);
  const httpUsers = ['f-sa1', 'f-sa2', 'f-sb1', 'f-sb2'];
  const wsUsers = ['f-wa', 'f-wb'];
  const readers = { a: ['f-a-sse', 'f-a-poll', 'f-a-ws'], b: ['f-b-sse', 'f-b-poll', 'f-b-ws'] };
  w.conv = await makeGroup(A, [...httpUsers, ...wsUsers, ...readers.a, ...readers.b, ...w.devs.map((d) => d.user)]);
  const tr = (u) => u.split('-').pop();
  w.followers = [
    ...readers.a.map((u) => new Follower(u, [A, B], tr(u), { idleMs })),
    ...readers.b.map((u) => new Follower(u, [B, A], tr(u), { idleMs })),
  ];
  w.following = Promise.all(w.followers.map((f) => f.run(240000)));
  cleanup(async () => {
    w.followers.forEach((f) => f.stop());
    await w.following;
  });
  for (const [base, n] of [[A, 'a'], [B, 'b']]) {
    await waitFor(async () => {
      const m = await metrics(base);
      return ['sse', 'poll', 'ws'].every((t) => m[`lark_held_connections{transport="${t}"}`] === 1);
    }, `host ${n} holding its three readers`, 20000, 50);
  }
  const on = (u) => (/-(sa|wa)/.test(u) ? [A, B] : [B, A]);
  w.senders = httpUsers.map((u) => new Sender(u, on(u), w.conv, 5000, { timeout }));
  w.wsSenders = wsUsers.map((u) => new WsSender(u, on(u), w.conv, 5000, { idleMs: idleMs || 20000 }));
  w.everyone = [...w.senders, ...w.wsSenders];
  w.sendError = null;
  w.sends = Promise.all(w.everyone.map((s) => s.run(180000))).catch((e) => { w.sendError = e; });
  cleanup(async () => {
    w.everyone.forEach((s) => s.stop());
    await w.sends;
  });
  return w;
}

/** Wait until n more sends than now are acknowledged (bounded). */
export async function ackedMore(w, n, what, limit = 60000) {
  const count = () => w.everyone.reduce((a, s) => a + s.acked.length, 0);
  const want = count() + n;
  await waitFor(() => count() >= want, `${n} more acknowledged sends ${what}`, limit, 10);
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
 * n messages of the conversation (bounded wait), the last names the last
 * message, and a job notified twice counts once. Returns those doubled
 * jobs: [{ user, job, at: [times] }].
 */
async function pushSettled(rig, devs, n, limit = 45000) {
  const total = (d) => notificationsOf(rig, d).reduce((a, x) => a + x.count, 0);
  // each job counted once: a job notified again (a dead daemon's, after
  // its lease) must not make the count look complete while the jobs of
  // the last messages are still due
  const once = (d) => [...new Map(notificationsOf(rig, d).map((x) => [x.job, x.count])).values()]
    .reduce((a, c) => a + c, 0);
  await waitFor(() => devs.every((d) => once(d) >= n), `every device notified of all ${n} messages`, limit, 100);
  await sleep(1000); // a notification sent twice would arrive by now
  const doubled = [];
  for (const d of devs) {
    const got = notificationsOf(rig, d);
    assert.equal(Math.max(...got.map((x) => x.seq)), n, `${d.user}: notified of the last message`);
    const byJob = new Map();
    for (const x of got) byJob.set(x.job, [...(byJob.get(x.job) || []), x]);
    let extra = 0;
    for (const [job, xs] of byJob) {
      if (xs.length < 2) continue;
      doubled.push({ user: d.user, job, at: xs.map((x) => x.at) });
      extra += xs[0].count * (xs.length - 1);
    }
    assert.equal(total(d) - extra, n, `${d.user}: every message in exactly one job`);
  }
  return doubled;
}

/** lark-push's log lines about the jobs of doubled, to tell why. */
function pushLines(rig, doubled) {
  const ids = new Set(doubled.map((d) => `job=${d.job} `));
  const lines = rig.daemons.flatMap((d) => fs.readFileSync(d.log, 'utf8').split('\n')
    .filter((l) => [...ids].some((id) => l.includes(id)) || / (WARN|ERROR) /.test(l)));
  return lines.length ? `\n${lines.join('\n')}` : '';
}

/** Every push job finished (its outcome recorded: bounded wait), none dead. */
async function pushDrained(pg) {
  const left = () => pg.psql('SELECT id, sealed, attempts, due_at, last_error FROM push_jobs', 'lark');
  await waitFor(async () => (await left()).trim() === '', 'no push job left', 20000, 200)
    .catch(async (e) => { throw new Error(`${e.message}: ${await left()}`); });
  assert.equal((await pg.psql('SELECT count(*) FROM push_dead', 'lark')).trim(), '0', 'no push job dead');
}

/**
 * Senders' answers: only those a failover may give. allowed: HTTP statuses
 * (0: no answer, a host that vanished); a WebSocket session whose catch-up
 * read failed is closed (API.md: any close means reconnect), and a new one
 * refused while the database is away. Returns a summary line.
 */
function checkAnswers(w, allowed) {
  for (const s of w.senders) {
    const bad = [...s.statuses.keys()].filter((st) => !allowed.includes(st));
    assert.deepEqual(bad, [], `${s.user}: only ${allowed.join(', ')}; got ${s.summary()}`);
    assert.equal(s.no503RetryAfter, 0, `${s.user}: every 503 carried Retry-After`);
  }
  const wsAllowed = ['sent', 'error:db_unavailable', 'closed', 'auth:db_unavailable', 'timeout'];
  for (const s of w.wsSenders) {
    const bad = [...s.statuses.keys()].filter((st) => !wsAllowed.includes(st));
    assert.deepEqual(bad, [], `${s.user}: only ${wsAllowed.join(', ')}; got ${s.summary()}`);
  }
  const acked = w.everyone.flatMap((s) => s.acked);
  const retried = acked.filter((a) => a.tries.length > 1);
  const foundStored = acked.filter((a) => a.status === 200);
  return `${acked.length} acknowledged, ${retried.length} after a retry, ${foundStored.length} of them found stored (200)`;
}

/**
 * The first acknowledgement of a send begun after t (its created_at, set
 * by larkd when the request arrived, is later): ms from t, or null.
 */
export function firstAckAfter(w, t) {
  const after = w.everyone.flatMap((s) => s.acked).filter((a) => Date.parse(a.message.created_at) > t);
  return after.length ? Math.min(...after.map((a) => a.at)) - t : null;
}

/** The longest time a sender went without an acknowledgement: "ms (user: tries)". */
function longestGap(w) {
  let worst = { ms: 0 };
  for (const s of w.everyone) {
    for (let i = 1; i < s.acked.length; i++) {
      const ms = s.acked[i].at - s.acked[i - 1].at;
      if (ms > worst.ms) worst = { ms, user: s.user, tries: s.acked[i].tries };
    }
  }
  return worst.user ? `${worst.ms} ms (${worst.user}: ${worst.tries.join(' ')}${worst.tries.took ? ` in ${worst.tries.took.join(' ')} ms` : ''})` : '0 ms';
}

/**
 * Stop the senders and check everything on newPrimary (a PgCluster-like
 * object with psql()). opts: allowed (HTTP statuses senders may have
 * met), readerAllowed (statuses of readers' failed reconnections; 0: no
 * answer within the client's patience - a server that vanished keeps a
 * request on a connection to it waiting up to larkd's TCP timeout),
 * deadDaemonAt (wall ms a lark-push was killed: a job it notified before
 * may be notified again), movedFrom (the app host whose clients had to
 * move: its URL). Returns a summary line.
 */
export async function finishWorkload(w, newPrimary, {
  allowed = [200, 201, 503], readerAllowed = [503], deadDaemonAt = 0, movedFrom = null,
} = {}) {
  w.everyone.forEach((s) => s.stop());
  await w.sends;
  assert.equal(w.sendError, null);
  const answers = checkAnswers(w, allowed);
  const n = await verify(w.B, w.conv, w.everyone, w.followers, { catchUp: 60000 });
  const doubled = await pushSettled(w.rig, w.devs, n);
  // queue.h's at-least-once: a job is notified again only when the daemon
  // that sent it died before recording it, or when the provider's answer
  // was lost (the request failed, e.g. timed out, and was retried)
  const retried = new Set(w.rig.daemons.flatMap((d) => [...fs.readFileSync(d.log, 'utf8')
    .matchAll(/ push retry job=(\d+) /g)].map((m) => m[1])));
  const unexplained = doubled.filter((d) => !retried.has(String(d.job)) && !(deadDaemonAt && d.at[0] <= deadDaemonAt));
  assert.deepEqual(unexplained, [], 'a notification repeated without a dead daemon or a failed request to explain it' +
    `${pushLines(w.rig, unexplained)}`);
  await pushDrained(newPrimary);
  for (const x of w.apps) if (!w.stopped.has(x)) assert.ok(x.larkd.running(), `${x.host.name}'s larkd served on without a restart`);
  for (const f of w.followers) {
    const bad = [...f.statuses.keys()].filter((st) => !readerAllowed.includes(st));
    if (f.bases[0] !== movedFrom) {
      assert.deepEqual(bad, [], `${f.user}: reconnections met only ${readerAllowed.join(', ')}`);
      // API.md: a held SSE stream is kept, or told to reconnect, never just cut
      if (f.transport === 'sse') assert.equal(f.abruptEnds, 0, `${f.user}: no stream ended without event: reconnect`);
    } else {
      assert.ok(f.basesUsed.has(w.B), `${f.user} moved to host b`);
    }
  }
  if (movedFrom) for (const s of w.everyone.filter((x) => x.bases[0] === movedFrom)) assert.equal(s.cur, 1, `${s.user} moved to host b`);
  return `${n} messages; ${answers}; ${doubled.length} notifications repeated; longest a sender waited: ${longestGap(w)}`;
}

/** Lines about each client, for the log. */
export function clientLines(w) {
  return [
    `     (senders: ${w.everyone.map((s) => `${s.user} ${s.summary()}`).join(', ')})`,
    `     (readers: ${w.followers.map((f) => `${f.user} ${f.connections} conn` +
      `${f.reconnectEvents ? ` ${f.reconnectEvents} told` : ''}${f.abruptEnds ? ` ${f.abruptEnds} cut` : ''}` +
      `${f.statuses.size ? ` ${JSON.stringify(Object.fromEntries(f.statuses))}` : ''}`).join(', ')})`,
  ].join('\n');
}
