// netns.mjs - several "hosts" on one machine: network namespaces joined by
// veth pairs to a bridge in the root namespace (needs root and iproute2).
//
//   root namespace:  bridge <p>br with 10.231.N.1/24 (the clients live here)
//   host "db":       namespace <p>-db, eth0 10.231.N.2/24, lo up
//   host "a", "b":   ... .3, .4, ...
//
// Every name starts with a prefix that encodes the pid of the test process
// ("lk" + pid in base 36 + "x" + two random characters): unique per run, so
// a leftover cannot collide with the next run, and recognisable, so that
// the next run sweeps namespaces and links whose owner process is gone
// (a run that was SIGKILLed). Interface names fit Linux's 15 characters.
// down() (and, if the process ends first, an exit hook) kills every process
// left in the namespaces, deletes them and the links.

import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';

const NAME = /^lk([0-9a-z]+)x[0-9a-z]{2}/;

function ip(args, { timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout, encoding: 'utf8', killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) {
        err.message = `ip ${args.join(' ')} failed: ${stderr || err.message}`.trim();
        reject(err);
      } else resolve(stdout);
    });
  });
}

function ipSync(args) {
  return spawnSync('ip', args, { encoding: 'utf8', timeout: 15000 });
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Can this process create namespaces (root, iproute2 present)? */
export function netnsAvailable() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  return ipSync(['netns', 'list']).status === 0;
}

/** Kill every process in namespace ns, then delete it (synchronous). */
function deleteNsSync(ns) {
  const r = ipSync(['netns', 'pids', ns]);
  for (const pid of String(r.stdout || '').split(/\s+/).filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
  }
  ipSync(['netns', 'del', ns]);
}

/** Remove namespaces and links of runs whose process is gone. */
export function sweepLeftovers() {
  const owned = (name) => {
    const m = NAME.exec(name);
    return m && !pidAlive(parseInt(m[1], 36));
  };
  const nss = String(ipSync(['netns', 'list']).stdout || '').split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
  for (const ns of nss) if (owned(ns)) deleteNsSync(ns);
  const links = String(ipSync(['-o', 'link', 'show']).stdout || '').split('\n')
    .map((l) => (/^\d+: ([^:@]+)/.exec(l) || [])[1]).filter(Boolean);
  for (const l of links) if (owned(l)) ipSync(['link', 'del', l]);
}

const live = new Set();
process.on('exit', () => {
  for (const n of live) n.downSync();
});

export class Net {
  constructor() {
    this.prefix = `lk${process.pid.toString(36)}x${crypto.randomBytes(2).toString('hex').slice(0, 2)}`;
    this.bridge = `${this.prefix}br`;
    this.hosts = new Map(); // name -> { ns, addr, veth }
    this.subnet = null;     // "10.231.N"
    this.created = [];      // what down() removes, in creation order
  }

  /** An unused 10.231.N.0/24 on this machine. */
  async pickSubnet() {
    const used = await ip(['-o', '-4', 'addr', 'show']);
    for (let i = 0; i < 50; i++) {
      const n = 1 + crypto.randomInt(254);
      if (!used.includes(`10.231.${n}.`)) return `10.231.${n}`;
    }
    throw new Error('no free 10.231.N.0/24 subnet');
  }

  /** Create the bridge in the root namespace (the clients' side). */
  async up() {
    sweepLeftovers();
    live.add(this);
    this.subnet = await this.pickSubnet();
    await ip(['link', 'add', this.bridge, 'type', 'bridge']);
    this.created.push({ link: this.bridge });
    await ip(['addr', 'add', `${this.subnet}.1/24`, 'dev', this.bridge]);
    await ip(['link', 'set', this.bridge, 'up']);
    return this;
  }

  /** The address of host n (1 is the root namespace's bridge). */
  addr(n) { return `${this.subnet}.${n}`; }

  /** Add a host: a namespace with eth0 = subnet.n on the bridge; returns its address. */
  async addHost(name, n) {
    const ns = `${this.prefix}-${name}`;
    const veth = `${this.prefix}${name}0`;
    const peer = `${this.prefix}${name}1`;
    await ip(['netns', 'add', ns]);
    this.created.push({ ns });
    await ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', peer]);
    this.created.push({ link: veth });
    await ip(['link', 'set', peer, 'netns', ns]);
    await ip(['-n', ns, 'link', 'set', peer, 'name', 'eth0']);
    await ip(['-n', ns, 'addr', 'add', `${this.addr(n)}/24`, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['link', 'set', veth, 'master', this.bridge]);
    await ip(['link', 'set', veth, 'up']);
    const host = { name, ns, addr: this.addr(n), wrap: ['ip', 'netns', 'exec', ns] };
    this.hosts.set(name, host);
    return host;
  }

  /** Cut a host off the network (its end of the veth down) or reconnect it. */
  async setLink(name, upDown) {
    await ip(['link', 'set', `${this.prefix}${name}0`, upDown]);
  }

  /** Kill what runs in the namespaces, delete them, the veths and the bridge. */
  async down() {
    this.downSync();
  }

  downSync() {
    for (const c of [...this.created].reverse()) {
      if (c.ns) deleteNsSync(c.ns);
      else ipSync(['link', 'del', c.link]); // a veth may be gone with its namespace already
    }
    this.created = [];
    live.delete(this);
  }

  /** Names of namespaces and links of this run still present (for tests of the clean-up). */
  leftovers() {
    const nss = String(ipSync(['netns', 'list']).stdout || '');
    const links = String(ipSync(['-o', 'link', 'show']).stdout || '');
    return [...nss.split('\n'), ...links.split('\n')].filter((l) => l.includes(this.prefix));
  }
}
