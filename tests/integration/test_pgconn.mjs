// test_pgconn.mjs - what larkd asks of every PostgreSQL connection before
// using it (issue 13, finding 6): statement_timeout is set on connect
// (core/store_pg.c, pg_ready) so that no statement waits on a lock
// forever. larkd used to ignore the result of that SET and serve requests
// from a connection without the timeout; a connection whose SET failed is
// now dropped, and the request is answered 503 with Retry-After until a
// connection can be set up properly.
//
// The failure is injected by the TCP proxy between larkd and the server
// (lib/dbproxy.mjs, refuse): it answers "SET statement_timeout" itself
// with an error and keeps the connection open, as a server (or a pooler)
// that refused the statement would.
//
// PostgreSQL only.

import path from 'node:path';
import { assert, skip, test } from './lib/harness.mjs';
import { Stack, backend, sleep, waitFor } from './lib/stack.mjs';
import { Api } from './lib/client.mjs';
import { DbProxy } from './lib/dbproxy.mjs';
import { sharedCluster } from './lib/pg.mjs';

if (backend !== 'postgres') {
  skip('a connection whose SET statement_timeout fails is not used', 'PostgreSQL only; runs with --backend=postgres');
} else {
  let s;
  let proxy;
  let db;
  let cluster;

  test('start through a proxy that can refuse statements', async () => {
    cluster = await sharedCluster();
    db = await cluster.createDb();
    proxy = await new DbProxy({ path: path.join(cluster.dir, `.s.PGSQL.${cluster.port}`) }).start();
    s = await new Stack({ LARK_DB: `postgresql://postgres@127.0.0.1:${proxy.port}/${db}` }).start();
    const r = await new Api(s.url, 'pc-alice').send('pc-bob', 'before');
    assert.equal(r.status, 201, r.body);
  });

  test('a connection whose SET statement_timeout fails is not used: 503, then recovery', async () => {
    const alice = new Api(s.url, 'pc-alice');
    proxy.refuse(/SET statement_timeout/);
    // every connection larkd holds goes; the next ones cannot be set up
    for (const p of [...proxy.pipes]) for (const sock of p.sockets) sock.destroy();
    const end = Date.now() + 3000; // past the reconnection backoff (at most 2 s)
    let n = 0;
    while (Date.now() < end) {
      const r = await alice.send('pc-bob', `during ${n++}`);
      assert.equal(r.status, 503, `a send while SET statement_timeout fails: ${r.status} ${r.body}`);
      assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After on the 503');
      await sleep(100);
    }
    await waitFor(() => /cannot set statement_timeout/.test(s.logs()), 'the log line', 5000);
    proxy.refuse(null);
    await waitFor(async () => (await alice.send('pc-bob', 'after')).status === 201,
      'a send once SET works again', 15000, 200);
  });

  test('stop', async () => {
    await s.stop();
    await proxy.stop();
  });
}
