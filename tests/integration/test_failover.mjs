// test_failover.mjs - high availability on PostgreSQL (issue 17): a
// primary with a synchronous streaming standby in another zone, two larkd
// hosts on a connection string naming both database hosts, live clients
// on every transport and lark-push (lib/failover.mjs), then the primary
// is lost and the standby promoted by the test, as a script or an
// operator would (pg_ctl promote). lib/zones.mjs draws the zones.
//
//   1. kill -9 of the primary (every process of it): its connections are
//      closed at once (the kernel is alive), both app hosts stay;
//   2. zone a lost: its database host and its app host cut off the
//      network (their links down: packets vanish, nobody is told) and
//      zone a's lark-push killed; the clients of host a move to host b.
//
// What must hold, whatever the moment of the failure:
//   - every acknowledged message (201, a WebSocket "sent") is on the new
//     primary, once, with gapless conversation seqs; a send in flight is
//     answered 201/sent or an error (503 + Retry-After, a db_unavailable
//     error line, or no answer from a host that vanished), and its retry
//     with the same client_msg_id is stored exactly once (200 when the
//     first attempt had been stored after all);
//   - every SSE, long-poll and WebSocket reader gets every message once,
//     in order, its inbox gapless, and no larkd is restarted;
//   - lark-push notifies every device of every message in exactly one
//     job; a job is repeated only when the daemon that had claimed it died
//     (its documented at-least-once), never otherwise;
// and each test prints the time from the failure to the first 201 of a
// send begun after it (docs/BENCHMARKS.md "Failover").
//
// PostgreSQL only, and needs root (ip netns); skipped with the reason
// otherwise. Every server, namespace and directory is removed on every
// path (harness cleanups, exit hooks, and the next run's sweeps).

import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { backend, waitFor } from './lib/stack.mjs';
import { netnsAvailable } from './lib/netns.mjs';
import { PgCluster } from './lib/pg.mjs';
import { multiHostUri } from './lib/zones.mjs';
import {
  APP_ENV, CLIENT_IDLE_MS, QUICK_KEEPALIVE, ackedMore, clientLines, finishWorkload, firstAckAfter,
  startWorkload, zones,
} from './lib/failover.mjs';

const NAME_KILL = 'kill -9 of the primary, the synchronous standby promoted: nothing acknowledged lost, every client and lark-push resume';
const NAME_ZONE = 'zone a cut off (its database and app hosts, its lark-push killed), the standby promoted: host a\'s clients move to host b';

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

if (backend !== 'postgres') {
  for (const name of [NAME_KILL, NAME_ZONE]) skip(name, 'PostgreSQL only (a primary and its standby); runs with --backend=postgres');
} else if (!netnsAvailable()) {
  for (const name of [NAME_KILL, NAME_ZONE]) skip(name, 'needs root and iproute2 for ip netns (CI runs as root)');
} else {
  test(NAME_KILL, async () => {
    const { net, h } = await zones();
    const { primary, standby } = await primaryAndStandby(net, h);
    const w = await startWorkload(net, h, multiHostUri([h.db1.addr, h.db2.addr]));

    await ackedMore(w, 150, 'before the failure');
    const t0 = Date.now();
    await primary.kill9();
    const tKilled = Date.now() - t0; // every process of it gone
    await standby.promote();
    const tPromoted = Date.now() - t0;
    await ackedMore(w, 150, 'after the promotion');

    assert.equal((await standby.psql('SELECT pg_is_in_recovery()')).trim(), 'f', 'the standby is the primary now');
    const summary = await finishWorkload(w, standby);
    console.log(`     (${summary}; primary gone after ${tKilled} ms, standby promoted after ${tPromoted} ms; ` +
      `first 201 of a send begun after that: ${firstAckAfter(w, t0 + tKilled)} ms)`);
    console.log(clientLines(w));
  }, { timeout: 300000 });

  test(NAME_ZONE, async () => {
    const { net, h } = await zones();
    const { standby } = await primaryAndStandby(net, h);
    const w = await startWorkload(net, h, multiHostUri([h.db1.addr, h.db2.addr]), {
      appEnv: { ...APP_ENV, ...QUICK_KEEPALIVE }, idleMs: CLIENT_IDLE_MS, timeout: CLIENT_IDLE_MS, daemons: 2,
    });

    await ackedMore(w, 150, 'before the failure');
    const t0 = Date.now();
    await net.setLink('db1', 'down');
    await net.setLink('a', 'down');
    const tCut = Date.now() - t0; // nothing reaches zone a from now on
    w.rig.daemons[0].child.kill('SIGKILL');
    w.stopped.add(w.apps[0]); // cut off for good: stopped with SIGKILL at the end
    await standby.promote();
    const tPromoted = Date.now() - t0;
    await ackedMore(w, 150, 'after the promotion', 90000);

    const summary = await finishWorkload(w, standby,
      { allowed: [0, 200, 201, 503], readerAllowed: [0, 503], deadDaemonAt: t0, movedFrom: w.A });
    console.log(`     (${summary}; zone a cut off after ${tCut} ms, standby promoted after ${tPromoted} ms; ` +
      `first 201 of a send begun after the cut: ${firstAckAfter(w, t0 + tCut)} ms)`);
    console.log(clientLines(w));
  }, { timeout: 300000 });
}
