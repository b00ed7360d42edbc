// dbproxy.mjs - a TCP proxy in front of PostgreSQL that can make the
// database slow or unreachable on demand, for tests of what must not
// depend on it (tests/integration/test_slowdb.mjs).
//
// Modes:
//   pass        bytes flow as they come
//   slow        every chunk, either way, waits `delay` ms: each statement
//               (a round trip) takes about 2 x delay longer
//   blackhole   nothing flows and new connections hang (accepted, never
//               answered): a server whose host stopped answering, the
//               failure no timeout of the kernel reports quickly
// Switching back to pass releases what was held, in order.
//
// refuse(re): while set, a simple query (a frontend 'Q' message) whose text
// matches re is not forwarded; the proxy answers it itself with an
// ErrorResponse (SQLSTATE 42501) and ReadyForQuery, as a server that
// refused the statement would, and the connection goes on. It looks only at
// a chunk that starts with a 'Q' message - what libpq's PQexec writes in
// one piece - which is enough for the statements tests aim it at.

import net from 'node:net';

export class DbProxy {
  /** target: {path} (a unix socket) or {host, port}. */
  constructor(target) {
    this.target = target;
    this.mode = 'pass';
    this.delay = 200;
    this.refused = null;
    this.pipes = new Set();
    this.server = net.createServer((client) => this.accept(client));
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  set(mode, delay = this.delay) {
    this.mode = mode;
    this.delay = delay;
    if (mode === 'pass') for (const p of this.pipes) p.release();
  }

  /** Refuse simple queries matching re (null: refuse nothing). */
  refuse(re) {
    this.refused = re;
  }

  /** The server's answer to a refused query: ErrorResponse, ReadyForQuery. */
  static refusal() {
    const fields = Buffer.from('SERROR\0VERROR\0C42501\0Mrefused by the test proxy\0\0', 'latin1');
    const err = Buffer.alloc(5);
    err.write('E', 0, 'latin1');
    err.writeInt32BE(4 + fields.length, 1);
    const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]); // 'Z', length 5, idle
    return Buffer.concat([err, fields, ready]);
  }

  accept(client) {
    const upstream = net.connect(this.target);
    const pipe = {
      sockets: [client, upstream],
      held: [], // [dest, chunk] while black-holed
      release: () => {
        const held = pipe.held;
        pipe.held = [];
        for (const [dest, chunk] of held) if (!dest.destroyed) dest.write(chunk);
      },
    };
    this.pipes.add(pipe);
    const forward = (dest) => (chunk) => {
      if (this.mode === 'blackhole') pipe.held.push([dest, chunk]);
      else if (this.mode === 'slow') setTimeout(() => { if (!dest.destroyed) dest.write(chunk); }, this.delay);
      else if (pipe.held.length) pipe.held.push([dest, chunk]);
      else dest.write(chunk);
    };
    const toServer = forward(upstream);
    client.on('data', (chunk) => {
      if (this.refused && chunk[0] === 0x51 && this.refused.test(chunk.toString('latin1'))) {
        client.write(DbProxy.refusal());
        return;
      }
      toServer(chunk);
    });
    upstream.on('data', forward(client));
    const done = () => {
      this.pipes.delete(pipe);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
  }

  async stop() {
    for (const p of [...this.pipes]) {
      p.held = [];
      for (const sock of p.sockets) sock.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }
}
