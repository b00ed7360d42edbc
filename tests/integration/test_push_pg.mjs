// test_push_pg.mjs - two lark-push daemons sharing one PostgreSQL queue
// never send a job twice, and share the work.
//
// A throw-away PostgreSQL server (lib/pg.mjs), larkd on it, two lark-push
// daemons against the same fake APNs. Each claim takes due jobs with
// FOR UPDATE SKIP LOCKED under a lease, so every job goes out exactly once
// whichever daemon takes it; the daemons are woken by NOTIFY lark_push from
// larkd's send transaction, not by polling.

import { assert, test } from './lib/harness.mjs';
import { Stack, sleep, waitFor } from './lib/stack.mjs';
import { Api, metrics } from './lib/client.mjs';
import { PushRig, apnsToken } from './lib/push.mjs';
import { PgCluster } from './lib/pg.mjs';
import path from 'node:path';

const USERS = 150;
let pg;
let s;
let rig;
let dbName;

test('start: PostgreSQL, larkd on it, two lark-push daemons', async () => {
  pg = new PgCluster();
  await pg.start();
  dbName = await pg.createDb(`lark_push_${process.pid}`);
  const url = pg.uri(dbName);
  s = await new Stack({ LARK_DB: url, LARK_SEND_RATE: '0', LARK_PUSH_WINDOW_MS: '0' }).start();
  rig = new PushRig(s, { LARK_DB: url, LARK_PUSH_INFLIGHT: '40' });
  await rig.startFakes({ apnsDelayMs: 15 }); // slow answers: both daemons get work
  await rig.startDaemon(path.join(s.dir, 'lark-push-1.stderr'));
  await rig.startDaemon(path.join(s.dir, 'lark-push-2.stderr'));
}, { timeout: 120000 });

async function sendRound(alice, conv, n) {
  const r = await alice.post('/v1/messages', { conversation_id: conv, body: `round ${n}`, client_msg_id: `round-${n}` });
  assert.equal(r.status, 201, r.body);
}

test('every job is sent exactly once, by one daemon or the other', async () => {
  const alice = new Api(s.url, 'alice');
  const users = Array.from({ length: USERS }, (_, i) => `pgu${i}`);
  for (const u of users) {
    const r = await new Api(s.url, u).post('/v1/devices', { platform: 'apns', token: apnsToken(u), app: 'com.example.lark' });
    assert.equal(r.status, 201, r.body);
  }
  const g = await alice.post('/v1/conversations', { type: 'group', title: 'pg', members: users });
  assert.equal(g.status, 201, g.body);
  for (let round = 1; round <= 3; round++) {
    await sendRound(alice, g.json.id, round);
    await waitFor(() => rig.apns.delivered.length >= USERS * round, `round ${round} delivered`, 30000);
  }
  await sleep(1500); // a duplicate would have arrived by now
  const perToken = new Map();
  for (const d of rig.apns.delivered) perToken.set(d.token, (perToken.get(d.token) || 0) + 1);
  assert.equal(perToken.size, USERS);
  const twice = [...perToken.entries()].filter(([, n]) => n !== 3);
  assert.deepEqual(twice, [], 'each device got exactly one notification per message');
  assert.equal(rig.apns.requests.length, USERS * 3, 'no request was sent twice');
  const jobIds = rig.apns.delivered.map((d) => d.payload.lark.job);
  assert.equal(new Set(jobIds).size, jobIds.length, 'no job id twice');
  // both daemons took part
  const fs = await import('node:fs');
  const sent = rig.daemons.map((d) => (fs.readFileSync(d.log, 'utf8').match(/ push sent /g) || []).length);
  assert.equal(sent[0] + sent[1], USERS * 3, `sent per daemon: ${sent}`);
  assert.ok(sent[0] > 0 && sent[1] > 0, `both daemons sent (${sent})`);
  assert.equal((await pg.psql('SELECT count(*) FROM push_jobs', dbName)).trim(), '0');
  const m = await metrics(s.url);
  assert.equal(m['lark_push_sent_total{provider="apns"}'], USERS * 3, 'counters from both daemons add up');
}, { timeout: 180000 });

test('stop', async () => {
  try {
    await rig.stop();
    await s.stop();
  } finally {
    await pg.destroy();
  }
});
