// test_hosts.mjs - several hosts on one database (issue 3): network
// namespaces stand in for machines. Two app hosts run lighttpd + larkd
// each, larkd reaching PostgreSQL over TCP on a third, database host; the
// clients live in the root namespace, behind the bridge:
//
//   root ns (clients) 10.231.N.1 --bridge-- db 10.231.N.2 (PostgreSQL :5432)
//                                        +-- a  10.231.N.3 (lighttpd :8080, larkd)
//                                        +-- b  10.231.N.4 (lighttpd :8080, larkd)
//
// kill -9 of host a's larkd mid-stream: its clients (senders, SSE and
// long-poll readers) move to host b with their last seq / client_msg_id and
// miss nothing. Namespaces, links, servers and the cluster are removed on
// every path (harness cleanup, exit hooks, and a sweep of earlier runs').
//
// PostgreSQL only, and needs root (ip netns); skipped with the reason
// otherwise.

import fs from 'node:fs';
import path from 'node:path';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { Larkd, Lighttpd, backend, removeTmpDir, tmpDir, top, waitFor } from './lib/stack.mjs';
import { metrics } from './lib/client.mjs';
import { Follower, SCALE_ENV, Sender, makeGroup, verify } from './lib/scale.mjs';
import { Net, netnsAvailable } from './lib/netns.mjs';
import { PgCluster } from './lib/pg.mjs';

const NAME = 'three hosts: kill -9 of one app host\'s larkd mid-stream; its clients resume on the other';
let last = null; // { net, pg, dirs } of the run above, for the leftovers check

/** An app host: lighttpd bound to the host's address, larkd on the database host. */
async function appHost(host, dbUri, metricsFrom) {
  const dir = tmpDir(`lark-host-${host.name}-`);
  const conf = path.join(dir, 'lighttpd.conf');
  // conf/lighttpd.conf binds 127.0.0.1; this host serves on its own address
  fs.writeFileSync(conf, `include "${path.join(top, 'conf/lighttpd.conf')}"\nserver.bind := "${host.addr}"\n`);
  const larkd = new Larkd({
    dir, wrap: host.wrap, env: { ...SCALE_ENV, LARK_DB: dbUri, LARK_METRICS_ALLOW: metricsFrom },
  });
  const web = new Lighttpd({
    dir, conf, host: host.addr, port: 8080, wrap: host.wrap,
    env: { LARK_SOCKET: larkd.sock, LARK_WS_SOCKET: larkd.wsSock },
  });
  return { host, dir, larkd, web };
}

if (backend !== 'postgres') {
  skip(NAME, 'PostgreSQL only (hosts share one PostgreSQL); runs with --backend=postgres');
} else if (!netnsAvailable()) {
  skip(NAME, 'needs root and iproute2 for ip netns (CI runs as root)');
} else {
  test(NAME, async () => {
    const net = await new Net().up();
    cleanup(() => net.down());
    const dbh = await net.addHost('db', 2);
    const ha = await net.addHost('a', 3);
    const hb = await net.addHost('b', 4);
    const pg = await new PgCluster({
      listen: dbh.addr, port: 5432, wrap: dbh.wrap, hba: [`host all all ${net.subnet}.0/24 trust`],
    }).start();
    cleanup(() => pg.destroy());
    await pg.createDb('lark');
    const dbUri = pg.uri('lark', { host: dbh.addr });
    const apps = [await appHost(ha, dbUri, net.addr(1)), await appHost(hb, dbUri, net.addr(1))];
    last = { net, pg, dirs: apps.map((x) => x.dir) };
    cleanup(async () => {
      try {
        for (const x of apps) await x.web.stop();
        const codes = await Promise.all(apps.map((x) => x.larkd.stop()));
        // host a's larkd was killed: only its sanitizer report counts
        assert.equal(apps[0].larkd.sanitizerReport(), null, 'host a: no sanitizer report');
        apps[1].larkd.check(codes[1]);
      } finally {
        for (const x of apps) removeTmpDir(x.dir);
      }
    });
    // both hosts start at once on an empty database: their migrations race
    await Promise.all(apps.map((x) => x.larkd.start()));
    await Promise.all(apps.map((x) => x.web.start()));
    const [A, B] = apps.map((x) => x.web.url);

    // each larkd talks to the database host over TCP, from its own address
    const clients = await pg.psql("SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE datname = 'lark' AND client_addr IS NOT NULL ORDER BY 1");
    assert.deepEqual(clients.trim().split('\n'), [ha.addr, hb.addr]);

    const senders = ['h-sa1', 'h-sa2', 'h-sb1', 'h-sb2'];
    const onA = ['h-a-sse1', 'h-a-sse2', 'h-a-sse3', 'h-a-poll1', 'h-a-poll2', 'h-a-poll3'];
    const onB = ['h-b-sse1', 'h-b-poll1'];
    const conv = await makeGroup(B, [...senders, ...onA, ...onB]);
    const tr = (u) => (u.includes('sse') ? 'sse' : 'poll');
    const followers = [
      ...onA.map((u) => new Follower(u, [A, B], tr(u))),
      ...onB.map((u) => new Follower(u, [B, A], tr(u))),
    ];
    const following = followers.map((f) => f.run(240000));
    await waitFor(async () => {
      const m = await metrics(A);
      return m['lark_held_connections{transport="sse"}'] === 3 && m['lark_held_connections{transport="poll"}'] === 3;
    }, 'host a holding its six readers', 20000, 50);
    const sending = senders.map((u) => new Sender(u, u.includes('-sa') ? [A, B] : [B, A], conv, 60));
    const sends = Promise.all(sending.map((s) => s.run(180000)));

    const acked = () => sending.reduce((n, s) => n + s.acked.length, 0);
    await waitFor(() => acked() >= 60 || sending.every((s) => s.acked.length === s.count), '60 acknowledged sends', 60000, 5);
    apps[0].larkd.kill('SIGKILL');
    const killedAt = acked();
    await sends;
    assert.ok(killedAt < 240, 'the kill came mid-stream');
    assert.equal(apps[0].larkd.proc.signalCode, 'SIGKILL');

    const n = await verify(B, conv, sending, followers, { catchUp: 60000 });
    assert.equal(n, 240);
    for (const f of followers.filter((x) => onA.includes(x.user))) {
      assert.ok(f.basesUsed.has(B), `${f.user} moved to host b`);
      assert.ok(f.connections >= 2, `${f.user} reconnected`);
    }
    for (const s of sending.filter((x) => x.user.includes('-sa'))) assert.equal(s.cur, 1, `${s.user} moved to host b`);
    console.log(`     (${killedAt} of 240 acknowledged at the kill; senders: ${sending.map((s) => `${s.user} ${s.summary()}`).join(', ')})`);
    followers.forEach((f) => f.stop());
    await Promise.all(following);
  }, { timeout: 300000 });

  test('nothing left behind: namespaces, links, servers, cluster', () => {
    assert.ok(last, 'the hosts test ran');
    assert.deepEqual(last.net.leftovers(), []);
    assert.equal(last.pg.dir, null, 'cluster removed');
    if (!process.env.LARK_KEEP_TMP) for (const d of last.dirs) assert.equal(fs.existsSync(d), false, `${d} removed`);
  });
}
