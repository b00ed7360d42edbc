// tools/write_cost.mjs - bytes of SQLite database one write costs, per kind
// of write that the per-user quotas limit (docs/OPERATIONS.md "Abuse
// limits" has the figures and the bound they give with the default rates).
//
//   node tools/write_cost.mjs        (LARK_BUILD selects the build)
//
// A fresh lighttpd + larkd (tests/integration's Stack) with the group and
// member quotas off; N writes of each kind against groups of GROUP members,
// the database checkpointed (WAL truncated) before and after each run, and
// the growth of the main file divided by N. A figure of storage, not of
// time: the machine's load does not change it.

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Stack } from '../tests/integration/lib/stack.mjs';
import { Api } from '../tests/integration/lib/client.mjs';

const N = Number(process.env.WRITE_COST_N || 20);
const GROUP = 500;

const s = await new Stack({ LARK_GROUP_PER_MIN: '0', LARK_MEMBER_PER_MIN: '0', LARK_READ_PER_MIN: '0' }).start();
const db = path.join(s.dir, 'lark.db');
/** the database file's size once the WAL is checkpointed into it */
function size() {
  execFileSync('sqlite3', [db, 'PRAGMA wal_checkpoint(TRUNCATE);']);
  return Number(execFileSync('stat', ['-c', '%s', db]).toString());
}
async function ok(p, what) {
  const r = await p;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.body}`);
  return r;
}
/** bytes per write of fn(i), i < N */
async function cost(fn) {
  const before = size();
  for (let i = 0; i < N; i++) await fn(i);
  return Math.round((size() - before) / N);
}

const m = new Api(s.url, 'wc-mallory');
const members = Array.from({ length: GROUP - 1 }, (_, i) => `wc-v${i}`);
const group = (title, list = members) => ok(m.post('/v1/conversations', { type: 'group', title, members: list }), 'group');
await group('warm-up'); // every member's user row exists before measuring

const out = {};
out.group = await cost((i) => group(`g${i}`));
const adds = (await group('adds', members.slice(0, GROUP - 1 - N))).json.id;
out.member_add = await cost((i) => ok(m.post(`/v1/conversations/${adds}/members`, { user: `wc-new${i}` }), 'add'));
const big = (await group('big')).json.id;
out.message = await cost((i) => ok(m.post('/v1/messages', { conversation_id: big, client_msg_id: `c${i}`, body: 'hello there' }), 'send'));
out.read_receipt = await cost((i) => ok(m.post(`/v1/conversations/${big}/read`, { seq: i + 1 }), 'read'));
console.log(`bytes per write, group of ${GROUP}, N=${N}: ${JSON.stringify(out)}`);
await s.stop();
process.exit(0);
