// zones.mjs - two "zones" on one machine for the failover suites (issue
// 17): network namespaces (lib/netns.mjs) on one bridge, a database host
// and an app host in each zone, the clients in the root namespace:
//
//   root ns (clients, lark-push, fake APNs/FCM)  10.231.N.1
//   zone a:  db1  10.231.N.2 (PostgreSQL :5432)   a  10.231.N.4 (lighttpd :8080 + larkd)
//   zone b:  db2  10.231.N.3 (PostgreSQL :5432)   b  10.231.N.5 (lighttpd :8080 + larkd)
//
// A zone fails by cutting its hosts off the bridge (their veths down: the
// peers' packets are dropped, nobody is told, as when a data centre's
// uplinks go) and/or by kill -9 of its processes.
//
// Two shapes of database cluster run on it: a primary with a streaming
// standby made by pg_basebackup (lib/pg.mjs standby(), promoted by the
// test), or Patroni managing both nodes with etcd (lib/patroni.mjs).
// Both give larkd one connection string naming both database hosts, with
// target_session_attrs=read-write so that libpq picks whichever is the
// primary.

import fs from 'node:fs';
import path from 'node:path';
import { Larkd, Lighttpd, removeTmpDir, tmpDir, top } from './stack.mjs';
import { SCALE_ENV } from './scale.mjs';

/** Host numbers on the bridge. */
export const HOSTS = { db1: 2, db2: 3, a: 4, b: 5, etcd: 6 };

/**
 * LARK_DB naming every address in hosts (in that order) with the
 * read-write attribute: libpq tries them in turn, each with larkd's
 * connect timeout, and keeps the first that takes writes.
 */
export function multiHostUri(addrs, db = 'lark', port = 5432) {
  return `postgresql://postgres@${addrs.map((a) => `${a}:${port}`).join(',')}/${db}?target_session_attrs=read-write`;
}

/**
 * An app host: lighttpd bound to the host's address on :8080 and larkd on
 * dbUri, both in the host's namespace. env: extra settings for larkd.
 */
export function appHost(host, dbUri, metricsFrom, env = {}) {
  const dir = tmpDir(`lark-zone-${host.name}-`);
  const conf = path.join(dir, 'lighttpd.conf');
  // conf/lighttpd.conf binds 127.0.0.1; this host serves on its own address
  fs.writeFileSync(conf, `include "${path.join(top, 'conf/lighttpd.conf')}"\nserver.bind := "${host.addr}"\n`);
  const larkd = new Larkd({
    dir, wrap: host.wrap, env: { ...SCALE_ENV, LARK_DB: dbUri, LARK_METRICS_ALLOW: metricsFrom, ...env },
  });
  const web = new Lighttpd({
    dir, conf, host: host.addr, port: 8080, wrap: host.wrap,
    env: { LARK_SOCKET: larkd.sock, LARK_WS_SOCKET: larkd.wsSock },
  });
  return {
    host, dir, larkd, web,
    get url() { return web.url; },
    async start() {
      await larkd.start();
      await web.start();
      return this;
    },
    /**
     * Stop both; throws on a sanitizer report, and on an unclean exit of
     * a larkd that was not meant to die. killed: the host was lost (cut
     * off or killed): larkd gets SIGKILL, only a sanitizer report counts.
     */
    async stop({ killed = false } = {}) {
      try {
        await web.stop();
        const code = await larkd.stop(killed ? 'SIGKILL' : 'SIGTERM');
        if (killed) {
          const report = larkd.sanitizerReport();
          if (report) throw new Error(`sanitizer report in ${host.name}'s larkd:\n${report}`);
        } else {
          larkd.check(code);
        }
      } finally {
        removeTmpDir(dir);
      }
    },
  };
}

/**
 * A stand-in for Stack that PushRig (lib/push.mjs) accepts: a directory
 * for logs and keys, and LARK_DB for lark-push.
 */
export function pushHome(dbUri) {
  const dir = tmpDir('lark-zone-push-');
  return {
    dir,
    env: { LARK_DB: dbUri },
    larkdEnv: () => ({ LARK_DB: dbUri }),
    remove: () => removeTmpDir(dir),
  };
}
