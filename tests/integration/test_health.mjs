// test_health.mjs - /v1/healthz under a full disk (API.md "Operations":
// 503 when the database cannot take a write). The SQLite database lives on
// a small tmpfs that the test fills; healthz must turn 503 db_unavailable
// while writes fail, every send answered 201 must still be there and none
// answered 503 half-written, and all must recover once there is room.
//
// SQLite only (the file is what fills up), and root only (mount). A full
// disk does not stop every write at once: SQLite reuses the space a failed
// commit left in its -wal file, so a small write may still fit when a large
// one does not. The test keeps writing until the health check's own small
// write cannot commit either, as a real full disk would.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { Stack, backend, removeTmpDir, sleep, tmpDir, waitFor } from './lib/stack.mjs';
import { Api, request } from './lib/client.mjs';

const NAME = 'a full disk: healthz 503 db_unavailable, nothing acknowledged lost, recovery';
const isRoot = process.getuid && process.getuid() === 0;

if (backend !== 'sqlite') {
  skip(NAME, 'SQLite only: the database file is what fills the disk');
} else if (!isRoot) {
  skip(NAME, 'needs root to mount a small tmpfs (CI runs as root)');
} else {
  test(NAME, async () => {
    const disk = tmpDir('lark-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', disk]);
    const s = new Stack({ LARK_DB: `sqlite:${path.join(disk, 'lark.db')}`, LARK_SEND_RATE: '0' });
    cleanup(async () => {
      await s.stop();
      execFileSync('umount', [disk]);
      removeTmpDir(disk);
    });
    await s.start();
    const alice = new Api(s.url, 'full-alice');
    const ok = [];
    const refused = [];
    const send = async (body) => {
      const id = crypto.randomUUID();
      const r = await alice.post('/v1/messages', { to: 'full-bob', client_msg_id: id, body });
      if (r.status === 201) ok.push(id);
      else {
        assert.equal(r.status, 503, r.body);
        assert.equal(r.json.error.code, 'db_unavailable');
        refused.push(id);
      }
      return r.status;
    };
    assert.equal(await send('before'), 201);
    assert.equal((await request(s.url, 'GET', '/v1/healthz')).status, 200);

    // fill the disk
    const filler = path.join(disk, 'filler');
    const fd = fs.openSync(filler, 'w');
    const chunk = Buffer.alloc(64 * 1024);
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (e) {
      assert.equal(e.code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }

    // write until even the health check's write cannot commit
    const big = 'x'.repeat(12000);
    let health;
    await waitFor(async () => {
      await send(big);
      health = await request(s.url, 'GET', '/v1/healthz');
      return health.status === 503;
    }, 'healthz 503 on the full disk', 20000, 200);
    assert.equal(health.json.error.code, 'db_unavailable');
    assert.match(health.json.error.message, /cannot take a write/);
    assert.ok(Number(health.headers['retry-after']) >= 1);
    assert.ok(refused.length >= 1, 'no send failed');
    assert.equal(await send(big), 503, 'a send while healthz says the disk is full');

    // room again: healthy within the cache time, sends work
    fs.unlinkSync(filler);
    await waitFor(async () => (await request(s.url, 'GET', '/v1/healthz')).status === 200, 'healthz 200 again', 10000, 200);
    assert.equal(await send('after'), 201);
    await sleep(100);

    // every acknowledged message is there, in order, and none refused
    const conv = (await alice.get('/v1/conversations')).json.conversations[0].id;
    const stored = [];
    for (let after = 0; ;) {
      const page = await alice.get(`/v1/conversations/${conv}/messages?after=${after}&limit=200`);
      stored.push(...page.json.messages);
      if (!page.json.has_more) break;
      after = page.json.messages[page.json.messages.length - 1].seq;
    }
    assert.deepEqual(stored.map((m) => m.client_msg_id), ok);
    assert.deepEqual(stored.map((m) => m.seq), ok.map((_, i) => i + 1), 'seqs gapless');
  }, { timeout: 90000 });
}
