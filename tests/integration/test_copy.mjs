// test_copy.mjs - moving from SQLite to PostgreSQL with lark-copy
// (docs/DEPLOY.md "Two servers"): the same clients look at a lark on SQLite,
// then at one on PostgreSQL filled by lark-copy, and see the same thing -
// conversations, members with their read and delivered positions, history,
// inboxes from the start and from the acknowledged position, devices - and
// carry on: seqs continue, a retried client_msg_id finds its message, the
// id sequences continue after the highest id. Every table's rows are also
// compared one by one. lark-copy refuses while larkd holds the SQLite file,
// and refuses a target that is not empty.
//
// PostgreSQL runs only (it needs both back ends).

import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { assert, cleanup, skip, test } from './lib/harness.mjs';
import { Stack, backend, build } from './lib/stack.mjs';
import { sharedCluster } from './lib/pg.mjs';
import { Api, request } from './lib/client.mjs';
import { apnsToken, fcmToken } from './lib/push.mjs';

const NAME = 'the same clients on SQLite, then on PostgreSQL after lark-copy';

/** What each client can see: every read the API offers, for these users. */
async function views(url, users) {
  const out = {};
  for (const u of users) {
    const a = new Api(url, u);
    const list = (await a.get('/v1/conversations')).json;
    const convs = {};
    for (const c of list.conversations) {
      const detail = (await a.get(`/v1/conversations/${c.id}`)).json;
      const history = (await a.get(`/v1/conversations/${c.id}/messages?after=0&limit=200`)).json;
      convs[c.id] = { detail, history };
    }
    out[u] = {
      list,
      convs,
      inbox: (await a.get('/v1/poll?since=0&timeout=0&limit=500')).json,
      fromAcked: (await a.get('/v1/poll?timeout=0&limit=500')).json,
      devices: (await a.get('/v1/devices')).json,
    };
  }
  return out;
}

if (backend !== 'postgres') {
  skip(NAME, 'needs PostgreSQL beside SQLite; runs with --backend=postgres');
} else {
  test(NAME, async () => {
    const users = ['cp-alice', 'cp-bob', 'cp-carol', 'cp-dave'];
    const [alice, bob, carol] = users;
    const lite = await new Stack({ LARK_SEND_RATE: '0' }, { backend: 'sqlite' }).start();
    cleanup(() => lite.stop());
    const A = new Api(lite.url, alice);
    const B = new Api(lite.url, bob);
    const C = new Api(lite.url, carol);

    // a direct chat, acknowledged and read in part
    const sent = [];
    for (let i = 1; i <= 3; i++) sent.push((await A.send(bob, `direct ${i}`, { client_msg_id: `cp-d${i}` })).json);
    const direct = sent[0].conversation_id;
    assert.equal((await B.post('/v1/ack', { seq: 2 })).status, 200);
    assert.equal((await B.post(`/v1/conversations/${direct}/read`, { seq: 2 })).status, 200);
    // a group: messages, a member added and one removed
    const group = (await A.post('/v1/conversations', { type: 'group', title: 'trio', members: [bob, carol] })).json;
    await C.send(undefined, 'hello trio', { conversation_id: group.id, to: undefined });
    await B.send(undefined, 'hi all', { conversation_id: group.id, to: undefined });
    assert.equal((await A.post(`/v1/conversations/${group.id}/members`, { user: 'cp-dave' })).status, 201);
    assert.equal((await request(lite.url, 'DELETE', `/v1/conversations/${group.id}/members/${carol}`, { tok: A.tok })).status, 204);
    // devices, and push jobs for bob, who is offline
    assert.equal((await B.post('/v1/devices', { platform: 'fcm', token: fcmToken(bob), app: 'com.example.chat' })).status, 201);
    assert.equal((await C.post('/v1/devices', { platform: 'apns', token: apnsToken(carol), app: 'com.example.chat' })).status, 201);
    await A.send(bob, 'while offline', { client_msg_id: 'cp-d4' });
    await A.post('/v1/presence/heartbeat', undefined, { headers: { 'Content-Length': '0' } });
    const before = await views(lite.url, users);
    assert.equal(before[bob].list.conversations.length, 2);
    assert.ok(before[bob].inbox.events.length >= 8, JSON.stringify(before[bob].inbox));
    assert.ok(before[bob].fromAcked.events.length < before[bob].inbox.events.length, 'nothing acknowledged');
    assert.ok(before[alice].convs[direct].detail.members.some((m) => m.user === bob && m.read_seq === 2));
    assert.equal(before[bob].devices.devices.length, 1);

    const db = path.join(lite.dir, 'lark.db');
    const cluster = await sharedCluster();
    const name = await cluster.createDb();
    cleanup(() => cluster.dropDb(name));
    const target = cluster.uri(name);
    const copy = (extra = {}) => spawnSync(path.join(build, 'lark-copy'), ['--from', `sqlite:${db}`, '--to', target],
      { env: { ...process.env, LARK_DATA: lite.dir, ...extra }, encoding: 'utf8', timeout: 60000 });

    // not while larkd holds the file
    let r = copy();
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /stop larkd before copying/);
    assert.equal(await cluster.psql('SELECT count(*) FROM pg_tables WHERE tablename = \'users\'', name), '0\n');
    assert.equal(await lite.stopLarkd(), 0);

    r = copy();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /copied table=messages rows=\d+\n/);
    assert.match(r.stderr, /done: \d+ tables copied and checked/);

    // every table, row by row
    const tables = execFileSync('sqlite3', [db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_version' ORDER BY name"], { encoding: 'utf8' }).trim().split('\n');
    assert.ok(tables.includes('inbox') && tables.includes('push_jobs'), tables.join(' '));
    for (const t of tables) {
      // the columns both have (SQLite's own layout columns, such as an
      // append-order rowid, have no place in PostgreSQL and are not copied)
      const pgCols = (await cluster.psql(`SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '${t}'`, name)).trim().split('\n');
      const cols = execFileSync('sqlite3', [db, `SELECT name FROM pragma_table_info('${t}') ORDER BY cid`], { encoding: 'utf8' })
        .trim().split('\n').filter((col) => pgCols.includes(col));
      assert.ok(cols.length >= 2, `table ${t}: ${cols}`);
      const order = cols.map((_, i) => i + 1).join(', ');
      const sql = `SELECT ${cols.join(', ')} FROM ${t} ORDER BY ${order}`;
      const lines = execFileSync('sqlite3', ['-separator', '|', '-nullvalue', 'NULL', db, sql], { encoding: 'utf8' });
      const pgLines = execFileSync('psql', ['-X', '-q', '-A', '-t', '-F', '|', '-P', 'null=NULL',
        '-h', cluster.dir || cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-d', name, '-c', sql],
      { encoding: 'utf8' });
      assert.equal(pgLines, lines, `table ${t}`);
    }
    // the id sequences continue after the highest id ever given
    const maxJob = Number(execFileSync('sqlite3', [db, 'SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = \'push_jobs\'), 0), COALESCE((SELECT MAX(id) FROM push_jobs), 0))'], { encoding: 'utf8' }));
    assert.ok(maxJob >= 1, 'no push job was made');
    assert.equal(Number(await cluster.psql('SELECT last_value FROM push_jobs_id_seq', name)), maxJob);

    // the same clients, now on PostgreSQL
    const pg = await new Stack({ LARK_DB: target, LARK_SEND_RATE: '0' }).start();
    cleanup(() => pg.stop());
    const after = await views(pg.url, users);
    assert.deepEqual(after, before);

    // ...and carrying on
    const A2 = new Api(pg.url, alice);
    const B2 = new Api(pg.url, bob);
    const again = await A2.send(bob, 'retried', { client_msg_id: 'cp-d2' });
    assert.equal(again.status, 200, 'a retried client_msg_id finds its message');
    assert.equal(again.json.id, sent[1].id);
    const next = await A2.send(bob, 'direct 5');
    assert.equal(next.status, 201);
    assert.equal(next.json.seq, 5);
    const head = before[bob].inbox.next;
    const poll = (await B2.get(`/v1/poll?since=${head}&timeout=5`)).json;
    assert.deepEqual(poll.events.map((e) => [e.seq, e.data.body]), [[head + 1, 'direct 5']]);
    assert.ok(Number(await cluster.psql('SELECT max(id) FROM push_jobs', name)) >= maxJob);

    // a target that is not empty is refused, and left as it was
    const rows = await cluster.psql('SELECT count(*) FROM messages', name);
    r = copy();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already has \d+ rows: lark-copy only fills an empty database/);
    assert.equal(await cluster.psql('SELECT count(*) FROM messages', name), rows);
  }, { timeout: 120000 });
}
