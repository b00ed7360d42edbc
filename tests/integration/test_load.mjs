// test_load.mjs - 2,000 concurrent held long-polls on one larkd, every one
// woken by its own message, none lost, none answered twice. Bounded: a
// fixed number of connections and messages, every wait with a limit.

import http from 'node:http';
import { assert, test } from './lib/harness.mjs';
import { Stack, waitFor } from './lib/stack.mjs';
import { Api, metrics, request, token } from './lib/client.mjs';

const N = Number(process.env.LARK_LOAD_POLLS || 2000);
let s;

test('start (no per-user send limit: one sender wakes everyone)', async () => {
  s = await new Stack({ LARK_SEND_RATE: '0' }).start();
});

test(`${N} concurrent held long-polls are all woken by messages`, async () => {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const users = Array.from({ length: N }, (_, i) => `lp${i}`);
  const polls = users.map((u) => request(s.url, 'GET', '/v1/poll?timeout=60', { tok: token(u), timeout: 90000, headers: {}, agent }));
  await waitFor(async () => (await metrics(s.url))['lark_held_connections{transport="poll"}'] === N,
    `${N} held polls`, 60000, 200);
  const sender = new Api(s.url, 'waker');
  const sent = new Map();
  // bounded concurrency for the sends themselves
  for (let i = 0; i < N; i += 50) {
    const batch = users.slice(i, i + 50);
    const rs = await Promise.all(batch.map((u) => sender.send(u, `wake ${u}`)));
    rs.forEach((r, j) => {
      assert.equal(r.status, 201, r.body);
      sent.set(batch[j], r.json.id);
    });
  }
  const answers = await Promise.all(polls);
  const wrong = [];
  answers.forEach((r, i) => {
    const evs = r.json?.events || [];
    if (r.status !== 200 || evs.length !== 1 || evs[0].data.id !== sent.get(users[i]) || r.json.next !== 1)
      wrong.push(`${users[i]}: ${r.status} ${r.body.slice(0, 100)}`);
  });
  assert.deepEqual(wrong, []);
  const m = await metrics(s.url);
  assert.equal(m['lark_held_connections{transport="poll"}'], 0);
});

test('stop', async () => {
  await s.stop();
});
