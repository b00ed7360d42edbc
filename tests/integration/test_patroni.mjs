// test_patroni.mjs - failover done by Patroni itself (issue 17): Debian's
// patroni on the two database hosts of lib/zones.mjs, a one-node etcd on
// a third host, synchronous_mode on (lib/patroni.mjs), and the workload
// of lib/failover.mjs - two larkd hosts on a connection string naming both
// database hosts, every transport, lark-push. Then zone a's database host
// drops off the network (its link down: a power cut or a dead switch look
// the same from outside). Nobody runs pg_ctl promote: Patroni on the other
// host sees the leader key expire and promotes its synchronous standby,
// and larkd finds the new primary by itself.
//
// The checks are lib/failover.mjs finishWorkload's (nothing acknowledged
// lost or doubled, every reader gets everything in order, every
// notification once), plus: the isolated old primary demoted itself
// (Patroni stops a leader that cannot renew its key: no split brain).
// Prints the time from the cut to the promotion and to the first 201
// (docs/BENCHMARKS.md "Failover").
//
// PostgreSQL only; needs root (ip netns), patroni and etcd (tools/deps.sh
// test installs them); skipped with the reason otherwise.

import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { backend, waitFor } from './lib/stack.mjs';
import { netnsAvailable } from './lib/netns.mjs';
import { Etcd, PatroniNode, members, patroniAvailable } from './lib/patroni.mjs';
import { multiHostUri } from './lib/zones.mjs';
import {
  APP_ENV, CLIENT_IDLE_MS, QUICK_KEEPALIVE, ackedMore, clientLines, finishWorkload, firstAckAfter,
  startWorkload, zones,
} from './lib/failover.mjs';

const NAME = 'Patroni: the primary\'s host cut off, Patroni promotes the synchronous standby, lark follows by itself';

/** Wait until node's cluster view matches pred(members) (bounded); resolves the members. */
async function clusterIs(node, pred, what, limit) {
  let last = [];
  try {
    await waitFor(async () => pred((last = await members(node))), what, limit, 100);
  } catch (e) {
    throw new Error(`${e.message}; members: ${JSON.stringify(last)}\n--- ${node.name} ---\n${node.logTail(2000)}`);
  }
  return last;
}

const leader = (name) => (ms) => ms.some((m) => m.name === name && m.role === 'leader' && m.state === 'running');

if (backend !== 'postgres') {
  skip(NAME, 'PostgreSQL only; runs with --backend=postgres');
} else if (!netnsAvailable()) {
  skip(NAME, 'needs root and iproute2 for ip netns (CI runs as root)');
} else if (!patroniAvailable()) {
  skip(NAME, 'needs patroni and etcd (tools/deps.sh test installs them)');
} else {
  test(NAME, async () => {
    const { net, h } = await zones(['db1', 'db2', 'a', 'b', 'etcd']);
    const etcd = new Etcd(h.etcd);
    cleanup(() => etcd.stop());
    await etcd.start();
    const pg1 = new PatroniNode(h.db1, 'pg1', etcd, net.subnet);
    const pg2 = new PatroniNode(h.db2, 'pg2', etcd, net.subnet);
    cleanup(() => pg1.stop());
    cleanup(() => pg2.stop());
    await pg1.start();
    await clusterIs(pg1, leader('pg1'), 'pg1 bootstrapped, the leader', 60000);
    await pg1.psql('CREATE DATABASE lark');
    await pg2.start();
    await clusterIs(pg1, (ms) => ms.some((m) => m.name === 'pg2' && m.role === 'sync_standby' && m.state === 'running'),
      'pg2 cloned, streaming, the synchronous standby', 60000);

    const w = await startWorkload(net, h, multiHostUri([h.db1.addr, h.db2.addr]), {
      appEnv: { ...APP_ENV, ...QUICK_KEEPALIVE }, idleMs: CLIENT_IDLE_MS, timeout: CLIENT_IDLE_MS,
    });
    await ackedMore(w, 150, 'before the failure');
    const t0 = Date.now();
    await net.setLink('db1', 'down');
    const tCut = Date.now() - t0;
    await clusterIs(pg2, leader('pg2'), 'Patroni promoting pg2', 120000);
    const tPromoted = Date.now() - t0;
    await ackedMore(w, 150, 'after the failover', 60000);

    // cut off from etcd, pg1 could not renew its leader key: Patroni demoted it
    await waitFor(async () => (await pg1.psql('SELECT pg_is_in_recovery()').catch(() => 'not serving')).trim() !== 'f',
      'the isolated pg1 no longer a primary', 30000, 200);
    const summary = await finishWorkload(w, pg2, { allowed: [0, 200, 201, 503], readerAllowed: [0, 503] });
    assert.equal((await pg2.psql('SELECT pg_is_in_recovery()')).trim(), 'f');
    console.log(`     (${summary}; db1 cut off after ${tCut} ms; Patroni promoted pg2 after ${tPromoted} ms; ` +
      `first 201 of a send begun after the cut: ${firstAckAfter(w, t0 + tCut)} ms)`);
    console.log(clientLines(w));
  }, { timeout: 300000 });
}
