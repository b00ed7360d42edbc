// tools/failover_async.mjs - what a failover to an ASYNCHRONOUS standby
// loses, measured (issue 17, docs/DEPLOY.md "Two zones",
// docs/BENCHMARKS.md "Failover"). A synchronous standby is the control:
// it must lose nothing.
//
//   node tools/failover_async.mjs [--rounds N] [--standby async|sync|both] [--seconds S]
//
// Each round builds the zones of tests/integration/lib/zones.mjs (needs
// root: network namespaces): a primary and a streaming standby (synchronous
// or not) on two database hosts, two larkd hosts on a connection string
// naming both, four senders (two per host) sending into one group as fast
// as answers come back, retrying a failed send with its client_msg_id, and
// an SSE reader on each host. After S seconds (3) of load: how far the
// standby is behind (bytes of WAL not yet flushed there), kill -9 of the
// primary, pg_ctl promote of the standby, 2 s more load, then the count of
//   lost      messages answered 201 before the kill that the new primary
//             does not have (the senders will never send them again);
//   reused    their conversation seqs, given to other messages after the
//             promotion (a client that saw the lost one has a seq that now
//             names another message);
//   unseen    messages of the new primary's history that a reader never got
//             because it already held an event with that inbox seq (it drops
//             "duplicates" by seq, as API.md tells clients to).
// Ends with one line per mode: totals and the median per round.
//
// LARK_BUILD selects the build (default build). Every server, namespace
// and directory is removed at the end (the integration harness's cleanups).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = (f) => path.join(here, '../tests/integration/lib', f);
process.env.LARK_TEST_BACKEND = 'postgres';
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));

const { cleanup, run, test } = await import(lib('harness.mjs'));
const { killAll, sleep, waitFor } = await import(lib('stack.mjs'));
const { netnsAvailable } = await import(lib('netns.mjs'));
const { PgCluster } = await import(lib('pg.mjs'));
const { Follower, Sender, history, makeGroup } = await import(lib('scale.mjs'));
const { appHost, multiHostUri } = await import(lib('zones.mjs'));
const { zones } = await import(lib('failover.mjs'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const rounds = Number(opt('rounds', 5));
const seconds = Number(opt('seconds', 3));
const modes = opt('standby', 'both') === 'both' ? ['async', 'sync'] : [opt('standby')];
if (!netnsAvailable()) {
  console.error('failover_async: needs root and iproute2 (ip netns)');
  process.exit(2);
}

const results = { async: [], sync: [] };

async function round(mode, r) {
  const { net, h } = await zones();
  const hba = [`host all all ${net.subnet}.0/24 trust`, `host replication all ${net.subnet}.0/24 trust`];
  const primary = await new PgCluster({ listen: h.db1.addr, port: 5432, wrap: h.db1.wrap, hba }).start();
  cleanup(() => primary.destroy());
  await primary.createDb('lark');
  const standby = await primary.standby({ listen: h.db2.addr, port: 5432, wrap: h.db2.wrap });
  cleanup(() => standby.destroy());
  if (mode === 'sync') {
    await primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'");
    await primary.psql('SELECT pg_reload_conf()');
  }
  await waitFor(async () => (await primary.psql('SELECT sync_state FROM pg_stat_replication')).trim() === mode,
    `the standby streaming, ${mode}`, 30000, 100);
  const uri = multiHostUri([h.db1.addr, h.db2.addr]);
  const apps = [appHost(h.a, uri, net.addr(1)), appHost(h.b, uri, net.addr(1))];
  cleanup(async () => { for (const x of apps) await x.stop().catch(() => {}); });
  await Promise.all(apps.map((x) => x.larkd.start()));
  await Promise.all(apps.map((x) => x.web.start()));
  const [A, B] = apps.map((x) => x.url);
  const users = ['x-sa1', 'x-sa2', 'x-sb1', 'x-sb2'];
  const conv = await makeGroup(A, [...users, 'x-ra', 'x-rb']);
  const readers = [new Follower('x-ra', [A, B], 'sse'), new Follower('x-rb', [B, A], 'sse')];
  const reading = Promise.all(readers.map((f) => f.run(120000)));
  cleanup(async () => { readers.forEach((f) => f.stop()); await reading; });
  const senders = users.map((u) => new Sender(u, u.includes('-sa') ? [A, B] : [B, A], conv, 100000));
  const sending = Promise.all(senders.map((s) => s.run(120000))).catch((e) => e);
  cleanup(async () => { senders.forEach((s) => s.stop()); await sending; });

  await sleep(seconds * 1000);
  const behind = Number((await primary.psql(
    'SELECT COALESCE(pg_current_wal_lsn() - flush_lsn, 0) FROM pg_stat_replication')).trim() || 0);
  const t0 = Date.now();
  await primary.kill9();
  await standby.promote();
  await sleep(2000);
  senders.forEach((s) => s.stop());
  const err = await sending;
  if (err instanceof Error) throw err;
  await sleep(1000); // the readers' last events

  const hist = await history(B, users[0], conv);
  const byId = new Map(hist.map((m) => [m.id, m]));
  const bySeq = new Map(hist.map((m) => [m.seq, m]));
  const ackedBefore = senders.flatMap((s) => s.acked).filter((a) => a.at < t0);
  const lost = ackedBefore.filter((a) => !byId.has(a.message.id));
  const reused = lost.filter((a) => bySeq.has(a.message.seq));
  const unseen = readers.map((f) => {
    const got = new Set(f.messages(conv).map((e) => e.data.id));
    return hist.filter((m) => !got.has(m.id)).length;
  });
  const res = { acked: ackedBefore.length, behind, lost: lost.length, reused: reused.length, unseen: Math.max(...unseen) };
  results[mode].push(res);
  console.log(`${mode} round ${r}: ${JSON.stringify(res)}`);
}

for (let r = 1; r <= rounds; r++) {
  for (const mode of (r % 2 ? modes : [...modes].reverse())) {
    test(`${mode} round ${r}`, () => round(mode, r), { timeout: 180000 });
  }
}
const { failed } = await run('');
killAll();
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN; };
for (const mode of modes) {
  const rs = results[mode];
  const sum = (k) => rs.reduce((a, x) => a + x[k], 0);
  console.log(`${mode}: ${rs.length} rounds; acknowledged before the kill ${sum('acked')}, lost ${sum('lost')} ` +
    `(median ${med(rs.map((x) => x.lost))} per round, most ${Math.max(...rs.map((x) => x.lost))}), their seqs reused ${sum('reused')}, ` +
    `unseen by a reader ${sum('unseen')} (median ${med(rs.map((x) => x.unseen))}); ` +
    `WAL the standby lacked at the kill: median ${med(rs.map((x) => x.behind))} bytes`);
}
process.exit(failed ? 1 : 0);
