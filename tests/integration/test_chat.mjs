// test_chat.mjs - chat semantics: groups and their permissions, fan-out,
// delivered and read receipts (coalesced), unread counts, typing and
// presence (API.md "Messages and conversations", "Presence").

import { assert, test } from './lib/harness.mjs';
import { Stack, sleep, waitFor } from './lib/stack.mjs';
import { Api, RawSSE, request } from './lib/client.mjs';

let s;

test('start (presence ttl 3 s, heartbeat interval 1 s, groups up to 400)', async () => {
  s = await new Stack({
    LARK_PRESENCE_TTL: '3', LARK_PRESENCE_INTERVAL: '1', LARK_GROUP_MAX: '400', LARK_SEND_RATE: '0',
  }).start();
});

/** Every event in a user's inbox after since (paged). */
async function inbox(api, since = 0) {
  const out = [];
  for (;;) {
    const r = await api.poll(`?since=${since}&timeout=0&limit=1000`);
    assert.equal(r.status, 200, r.body);
    if (r.json.events.length === 0) return out;
    out.push(...r.json.events);
    since = r.json.next;
  }
}

/** A fresh inbox cursor: the seq of the newest event. */
async function head(api) {
  const evs = await inbox(api);
  return evs.length ? evs[evs.length - 1].seq : 0;
}

test('a group: creator is admin, every member is told, everyone can send', async () => {
  const ann = new Api(s.url, 'g-ann');
  const r = await ann.post('/v1/conversations', { type: 'group', title: 'Team', members: ['g-ben', 'g-cat', 'g-ben', 'g-ann'] });
  assert.equal(r.status, 201, r.body);
  const g = r.json;
  assert.match(g.id, /^c_[0-9a-f]{32}$/);
  assert.equal(g.type, 'group');
  assert.equal(g.title, 'Team');
  assert.equal(g.creator, 'g-ann');
  assert.deepEqual(g.members.map((m) => [m.user, m.role]).sort(),
    [['g-ann', 'admin'], ['g-ben', 'member'], ['g-cat', 'member']]);
  for (const who of ['g-ann', 'g-ben', 'g-cat']) {
    const evs = await inbox(new Api(s.url, who));
    assert.equal(evs.length, 1);
    assert.equal(evs[0].type, 'conversation');
    assert.equal(evs[0].data.action, 'created');
    // what changed, never the member list (issue 13: 16 KB per inbox row)
    assert.deepEqual(evs[0].data, { conversation_id: g.id, action: 'created', type: 'group',
      title: 'Team', by: 'g-ann', member_count: 3 });
  }
  const m = await new Api(s.url, 'g-cat').post('/v1/messages', { conversation_id: g.id, body: 'hi all' });
  assert.equal(m.status, 201);
  for (const who of ['g-ann', 'g-ben', 'g-cat']) {
    const evs = await inbox(new Api(s.url, who));
    const got = evs.filter((e) => e.type === 'message' && e.data.id === m.json.id);
    assert.equal(got.length, 1, `${who} got the group message once`);
  }
  const bad = [
    [{ type: 'direct', members: ['x'] }, 400, 'invalid_field'],
    [{ type: 'group' }, 400, 'missing_field'],
    [{ type: 'group', members: 'x' }, 400, 'wrong_type'],
    [{ type: 'group', members: [1] }, 400, 'wrong_type'],
    [{ type: 'group', members: ['bad id'] }, 400, 'invalid_field'],
    [{ type: 'group', members: [], title: 'x'.repeat(257) }, 400, 'invalid_field'],
    [{ type: 'group', members: Array.from({ length: 400 }, (_, i) => `many${i}`) }, 409, 'group_full'],
  ];
  for (const [body, status, code] of bad) {
    const e = await ann.post('/v1/conversations', body);
    assert.equal(e.status, status, JSON.stringify(body).slice(0, 80));
    assert.equal(e.json.error.code, code);
  }
});

test('a 300-member group: one send reaches all 300 inboxes', async () => {
  const owner = new Api(s.url, 'big-0');
  const others = Array.from({ length: 299 }, (_, i) => `big-${i + 1}`);
  const g = await owner.post('/v1/conversations', { type: 'group', title: 'Big', members: others });
  assert.equal(g.status, 201, g.body);
  assert.equal(g.json.members.length, 300);
  const m = await owner.post('/v1/messages', { conversation_id: g.json.id, body: 'to everyone', client_msg_id: 'big-1' });
  assert.equal(m.status, 201);
  const missing = [];
  await Promise.all(['big-0', ...others].map(async (u) => {
    const r = await new Api(s.url, u).poll('?since=1&timeout=0');
    const ev = r.json.events[0];
    if (!ev || ev.seq !== 2 || ev.data.id !== m.json.id) missing.push(u);
  }));
  assert.deepEqual(missing, []);
});

test('membership: only admins add, admins remove, anyone leaves; events tell those concerned', async () => {
  const admin = new Api(s.url, 'm-admin');
  const bob = new Api(s.url, 'm-bob');
  const carl = new Api(s.url, 'm-carl');
  const dave = new Api(s.url, 'm-dave');
  const g = (await admin.post('/v1/conversations', { type: 'group', title: 'M', members: ['m-bob', 'm-carl'] })).json;
  const base = `/v1/conversations/${g.id}/members`;
  const heads = { bob: await head(bob), carl: await head(carl) };

  let r = await bob.post(base, { user: 'm-dave' });
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'forbidden');
  r = await dave.post(base, { user: 'm-dave' });
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'not_member');
  r = await admin.post(base, { user: 'm-dave' });
  assert.equal(r.status, 201, r.body);
  assert.ok(r.json.members.some((m) => m.user === 'm-dave' && m.role === 'member'));
  r = await admin.post(base, { user: 'm-dave' });
  assert.equal(r.status, 200, 'adding a member again changes nothing');
  for (const [api, since] of [[bob, heads.bob], [carl, heads.carl], [dave, 0]]) {
    const evs = await inbox(api, since);
    const added = evs.filter((e) => e.type === 'member');
    assert.equal(added.length, 1, api.user);
    assert.deepEqual(added[0].data, { conversation_id: g.id, user: 'm-dave', action: 'added', by: 'm-admin',
      title: 'M', member_count: 4 });
  }
  // dave, now a member, reads history and sends
  r = await dave.get(`/v1/conversations/${g.id}/messages`);
  assert.equal(r.status, 200);
  r = await dave.post('/v1/messages', { conversation_id: g.id, body: 'hello from dave' });
  assert.equal(r.status, 201);

  r = await request(s.url, 'DELETE', `${base}/m-carl`, { tok: bob.tok });
  assert.equal(r.status, 403, 'a member does not remove others');
  const carlHead = await head(carl);
  r = await request(s.url, 'DELETE', `${base}/m-carl`, { tok: admin.tok });
  assert.equal(r.status, 204);
  const told = (await inbox(carl, carlHead)).filter((e) => e.type === 'member');
  assert.deepEqual(told.map((e) => e.data), [{ conversation_id: g.id, user: 'm-carl', action: 'removed',
    by: 'm-admin', title: 'M', member_count: 3 }], 'the removed member is told');
  r = await carl.post('/v1/messages', { conversation_id: g.id, body: 'am I still here?' });
  assert.equal(r.status, 403);
  r = await carl.get(`/v1/conversations/${g.id}/messages`);
  assert.equal(r.status, 403);
  r = await request(s.url, 'DELETE', `${base}/m-bob`, { tok: bob.tok });
  assert.equal(r.status, 204, 'anyone leaves');
  r = await request(s.url, 'DELETE', `${base}/m-bob`, { tok: admin.tok });
  assert.equal(r.status, 404, 'not a member any more');
  // the last admin leaves: the longest-standing member takes over
  r = await request(s.url, 'DELETE', `${base}/m-admin`, { tok: admin.tok });
  assert.equal(r.status, 204);
  r = await dave.get(`/v1/conversations/${g.id}`);
  assert.deepEqual(r.json.members.map((m) => [m.user, m.role]), [['m-dave', 'admin']]);
  // direct chats have no membership changes
  const d = (await bob.send('m-carl', 'direct')).json.conversation_id;
  r = await bob.post(`/v1/conversations/${d}/members`, { user: 'm-dave' });
  assert.equal(r.status, 403);
});

test('a group cannot grow past group_max', async () => {
  const t = await new Stack({ LARK_GROUP_MAX: '3' }).start();
  try {
    const a = new Api(t.url, 'full-a');
    const g = (await a.post('/v1/conversations', { type: 'group', members: ['full-b', 'full-c'] })).json;
    const r = await a.post(`/v1/conversations/${g.id}/members`, { user: 'full-d' });
    assert.equal(r.status, 409);
    assert.equal(r.json.error.code, 'group_full');
    const too = await a.post('/v1/conversations', { type: 'group', members: ['x1', 'x2', 'x3'] });
    assert.equal(too.status, 409);
  } finally {
    await t.stop();
  }
});

test('the conversation list: most recent first, last message, unread, members, pages', async () => {
  const me = new Api(s.url, 'l-me');
  const convs = [];
  for (const peer of ['l-p1', 'l-p2', 'l-p3']) convs.push((await new Api(s.url, peer).send('l-me', `from ${peer}`)).json.conversation_id);
  await new Api(s.url, 'l-p1').send('l-me', 'again from l-p1'); // l-p1 becomes the most recent
  let r = await me.get('/v1/conversations');
  assert.equal(r.status, 200);
  const list = r.json.conversations;
  assert.deepEqual(list.map((c) => c.id), [convs[0], convs[2], convs[1]]);
  assert.equal(list[0].last_message.body, 'again from l-p1');
  assert.deepEqual(list.map((c) => c.unread), [2, 1, 1]);
  assert.equal(list[0].type, 'direct');
  assert.deepEqual(list[0].members.map((m) => m.user).sort(), ['l-me', 'l-p1']);
  assert.equal(r.json.has_more, false);
  r = await me.get('/v1/conversations?limit=2');
  assert.deepEqual(r.json.conversations.map((c) => c.id), [convs[0], convs[2]]);
  assert.equal(r.json.has_more, true);
  r = await me.get(`/v1/conversations?limit=2&before=${convs[2]}`);
  assert.deepEqual(r.json.conversations.map((c) => c.id), [convs[1]]);
  assert.equal(r.json.has_more, false);
  r = await new Api(s.url, 'l-stranger').get(`/v1/conversations?before=${convs[2]}`);
  assert.equal(r.status, 403);
  r = await me.get(`/v1/conversations/${convs[0]}`);
  assert.equal(r.status, 200);
  assert.equal(r.json.unread, 2);
  assert.ok(r.json.members.every((m) => 'read_seq' in m && 'delivered_seq' in m));
  r = await new Api(s.url, 'l-stranger').get(`/v1/conversations/${convs[0]}`);
  assert.equal(r.status, 403);
  r = await me.get('/v1/conversations/c_' + 'a'.repeat(32));
  assert.equal(r.status, 404);
});

test('acknowledging makes messages delivered: one receipt per (conversation, sender)', async () => {
  const ali = new Api(s.url, 'r-ali');
  const bo = new Api(s.url, 'r-bo');
  const cy = new Api(s.url, 'r-cy');
  const g = (await ali.post('/v1/conversations', { type: 'group', members: ['r-bo', 'r-cy'] })).json;
  let last;
  for (let i = 0; i < 40; i++) last = (await ali.post('/v1/messages', { conversation_id: g.id, body: `a${i}` })).json;
  for (let i = 0; i < 10; i++) last = (await cy.post('/v1/messages', { conversation_id: g.id, body: `c${i}` })).json;
  const aliHead = await head(ali);
  const cyHead = await head(cy);
  const boEvents = await inbox(bo);
  const r = await bo.post('/v1/ack', { seq: boEvents[boEvents.length - 1].seq });
  assert.equal(r.status, 200);
  assert.equal(r.json.acked, boEvents[boEvents.length - 1].seq, 'the answer says the new position');
  // (reading inboxes here acknowledges them too: keep r-bo's receipts)
  const fromBo = (e) => e.type === 'receipt' && e.data.user === 'r-bo';
  // the position is written, and its receipts made, just after the answer
  await waitFor(async () => (await inbox(ali, aliHead)).some(fromBo), 'the delivered receipt');
  const toAli = (await inbox(ali, aliHead)).filter(fromBo);
  const toCy = (await inbox(cy, cyHead)).filter(fromBo);
  const expect = { conversation_id: g.id, user: 'r-bo', status: 'delivered', up_to: last.seq };
  assert.deepEqual(toAli.map((e) => e.data), [expect], '50 messages acknowledged: one receipt');
  assert.deepEqual(toCy.map((e) => e.data), [expect]);
  // acknowledging again changes nothing
  await bo.post('/v1/ack', { seq: boEvents[boEvents.length - 1].seq });
  assert.equal((await inbox(ali, aliHead)).filter(fromBo).length, 1);
  const detail = await ali.get(`/v1/conversations/${g.id}`);
  assert.equal(detail.json.members.find((m) => m.user === 'r-bo').delivered_seq, last.seq);
});

test('since= on a poll and Last-Event-ID on SSE acknowledge too, with receipts', async () => {
  const a = new Api(s.url, 'r2-a');
  const b = new Api(s.url, 'r2-b');
  await a.send('r2-b', 'one');
  await a.send('r2-b', 'two');
  const aHead = await head(a);
  await b.poll('?since=1&timeout=0');
  await waitFor(async () => (await inbox(a, aHead)).some((e) => e.type === 'receipt'), 'the first receipt');
  let rec = (await inbox(a, aHead)).filter((e) => e.type === 'receipt');
  assert.deepEqual(rec.map((e) => [e.data.status, e.data.up_to]), [['delivered', 1]]);
  const sse = new RawSSE(s.url, '/v1/events', { tok: b.tok, headers: { 'Last-Event-ID': '2' } });
  await sse.ready;
  await waitFor(async () => (await inbox(a, aHead)).filter((e) => e.type === 'receipt').length === 2, 'second receipt');
  rec = (await inbox(a, aHead)).filter((e) => e.type === 'receipt');
  assert.deepEqual(rec.map((e) => [e.data.status, e.data.up_to]), [['delivered', 1], ['delivered', 2]]);
  sse.close();
});

test('reading: the sender gets a read receipt and unread counts drop', async () => {
  const a = new Api(s.url, 'rd-a');
  const b = new Api(s.url, 'rd-b');
  let conv;
  for (let i = 1; i <= 10; i++) conv = (await a.send('rd-b', `m${i}`)).json.conversation_id;
  await b.send('rd-a', 'reply 11');
  const aHead = await head(a);
  let c = await b.get(`/v1/conversations/${conv}`);
  assert.equal(c.json.unread, 10, 'own messages are never unread');
  let r = await b.post(`/v1/conversations/${conv}/read`, { seq: 6 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { read_seq: 6 });
  c = await b.get(`/v1/conversations/${conv}`);
  assert.equal(c.json.unread, 4);
  const rec = (await inbox(a, aHead)).filter((e) => e.type === 'receipt');
  assert.deepEqual(rec.map((e) => e.data), [{ conversation_id: conv, user: 'rd-b', status: 'read', up_to: 6 }]);
  r = await b.post(`/v1/conversations/${conv}/read`, { seq: 3 });
  assert.deepEqual(r.json, { read_seq: 6 }, 'never moves back');
  r = await b.post(`/v1/conversations/${conv}/read`, { seq: 1000 });
  assert.deepEqual(r.json, { read_seq: 11 }, 'clamped to the last message');
  c = await b.get(`/v1/conversations/${conv}`);
  assert.equal(c.json.unread, 0);
  assert.equal(c.json.members.find((m) => m.user === 'rd-b').read_seq, 11);
  r = await new Api(s.url, 'rd-x').post(`/v1/conversations/${conv}/read`, { seq: 1 });
  assert.equal(r.status, 403);
  r = await b.post(`/v1/conversations/${conv}/read`, { seq: 'x' });
  assert.equal(r.status, 400);
});

test('reading: every other member gets the read receipt, the reader none (API.md)', async () => {
  const ann = new Api(s.url, 'rr-ann');
  const ben = new Api(s.url, 'rr-ben');
  const cat = new Api(s.url, 'rr-cat');
  const say = (u, body) => u.post('/v1/messages', { conversation_id: g.id, body });
  const g = (await ann.post('/v1/conversations', { type: 'group', title: 'Reads', members: ['rr-ben', 'rr-cat'] })).json;
  await say(ann, 'one');
  await say(ann, 'two');
  const last = (await say(ben, 'three, from ben')).json.seq;
  // acknowledge everything first: the delivered receipts that causes come in
  // a second round, which acknowledges only receipts (they make nothing more)
  for (const u of [ann, ben, cat]) await head(u);
  await waitFor(async () => (await ann.get(`/v1/conversations/${g.id}`)).json.members
    .every((m) => m.delivered_seq === last), 'every acknowledgement written');
  const heads = [];
  for (const u of [ann, ben, cat]) heads.push(await head(u));
  const r = await cat.post(`/v1/conversations/${g.id}/read`, { seq: last });
  assert.deepEqual(r.json, { read_seq: last });
  const want = { conversation_id: g.id, user: 'rr-cat', status: 'read', up_to: last };
  const got = await Promise.all([ann, ben, cat].map((u, i) => inbox(u, heads[i])));
  assert.deepEqual(got[0].map((e) => [e.type, e.data]), [['receipt', want]], 'the sender of one and two');
  assert.deepEqual(got[1].map((e) => [e.type, e.data]), [['receipt', want]], 'the sender of three');
  assert.deepEqual(got[2], [], 'nothing to the reader');
  // a member who sent nothing in the range still hears of it
  const seq4 = (await say(ann, 'four')).json.seq;
  const h = await Promise.all([ben, cat].map(head));
  await ann.post(`/v1/conversations/${g.id}/read`, { seq: seq4 });
  for (const [i, u] of [ben, cat].entries()) {
    const evs = await inbox(u, h[i]);
    assert.deepEqual(evs.map((e) => e.data), [{ conversation_id: g.id, user: 'rr-ann', status: 'read', up_to: seq4 }]);
  }
  // reading again up to the same place tells nobody anything new
  const h2 = await head(ben);
  await cat.post(`/v1/conversations/${g.id}/read`, { seq: last });
  assert.deepEqual(await inbox(ben, h2), []);
});

test('typing reaches the other members live, is never stored, and is rate-limited', async () => {
  const a = new Api(s.url, 't-a');
  const b = new Api(s.url, 't-b');
  const conv = (await a.send('t-b', 'hello')).json.conversation_id;
  const bHead = await head(b);
  const sb = new RawSSE(s.url, '/v1/events', { tok: b.tok });
  const sa = new RawSSE(s.url, '/v1/events', { tok: a.tok });
  await Promise.all([sb.ready, sa.ready]);
  await sleep(100);
  let r = await a.post(`/v1/conversations/${conv}/typing`);
  assert.equal(r.status, 204);
  await sb.until((x) => x.events.some((e) => e.event === 'typing'), 'typing event');
  const t = sb.events.find((e) => e.event === 'typing');
  assert.equal(t.id, null, 'no id: for an ephemeral event');
  assert.deepEqual(t.json, { type: 'typing', data: { conversation_id: conv, user: 't-a' } });
  await sleep(200);
  assert.ok(!sa.events.some((e) => e.event === 'typing'), 'not echoed to the typist');
  // a held long-poll gets it as its answer, with next unchanged
  const held = b.poll(`?since=${bHead}&timeout=20`);
  await sleep(200);
  await a.post(`/v1/conversations/${conv}/typing`);
  const p = await held;
  assert.equal(p.json.events[0].type, 'typing');
  assert.equal(p.json.next, bHead);
  assert.equal((await inbox(b, bHead)).length, 0, 'nothing stored in the inbox');
  const h = await b.get(`/v1/conversations/${conv}/messages`);
  assert.equal(h.json.messages.length, 1, 'nothing in history');
  const rs = [];
  for (let i = 0; i < 10; i++) rs.push((await a.post(`/v1/conversations/${conv}/typing`)).status);
  assert.ok(rs.includes(429), 'typing is rate-limited per user');
  r = await new Api(s.url, 't-x').post(`/v1/conversations/${conv}/typing`);
  assert.equal(r.status, 403);
  sa.close();
  sb.close();
});

test('a long-poll client between two polls gets the typing sent meanwhile, once', async () => {
  const a = new Api(s.url, 'tg-a');
  const b = new Api(s.url, 'tg-b');
  const conv = (await a.send('tg-b', 'hello')).json.conversation_id;
  const bHead = await head(b);
  // ben's held poll ends empty: he is now between two polls, not connected
  const first = await b.poll(`?since=${bHead}&timeout=1`);
  assert.deepEqual(first.json.events, []);
  assert.equal((await a.post(`/v1/conversations/${conv}/typing`)).status, 204);
  await sleep(200);
  // his next poll gets it (without the gap it would wait out its timeout, empty)
  const p = await b.poll(`?since=${bHead}&timeout=5`);
  assert.deepEqual(p.json.events, [{ type: 'typing', data: { conversation_id: conv, user: 'tg-a' } }]);
  assert.equal(p.json.next, bHead);
  // kept once: the poll after that has nothing
  const q = await b.poll(`?since=${bHead}&timeout=1`);
  assert.deepEqual(q.json.events, []);
});

test('presence: heartbeat, query, watch; online then offline after ttl, watchers only', async () => {
  const watcher = new Api(s.url, 'p-watcher');
  const other = new Api(s.url, 'p-other');
  const target = new Api(s.url, 'p-target');
  // presence_visibility = shared (the default): they share a group
  // (test_harden.mjs has users who share none)
  assert.equal((await target.post('/v1/conversations', { type: 'group', members: ['p-watcher', 'p-other'] })).status, 201);
  const sw = new RawSSE(s.url, '/v1/events', { tok: watcher.tok });
  const so = new RawSSE(s.url, '/v1/events', { tok: other.tok });
  await Promise.all([sw.ready, so.ready]);
  let r = await watcher.post('/v1/presence/watch', { users: ['p-target', 'p-nobody'] });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.watching, 2);
  assert.equal(r.json.presence['p-target'].status, 'offline');
  assert.equal(r.json.presence['p-nobody'].last_seen, null);
  r = await target.post('/v1/presence/heartbeat');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'online', interval: 1, ttl: 3 });
  await sw.until((x) => x.events.some((e) => e.event === 'presence' && e.json.data.status === 'online'), 'online');
  const on = sw.events.find((e) => e.event === 'presence');
  assert.equal(on.id, null);
  assert.equal(on.json.data.user, 'p-target');
  r = await other.get('/v1/presence?users=p-target,p-nobody');
  assert.equal(r.json['p-target'].status, 'online');
  assert.match(r.json['p-target'].last_seen, /Z$/);
  assert.equal(r.json['p-nobody'].status, 'offline');
  // no more heartbeats: offline after the ttl
  await sw.until((x) => x.events.some((e) => e.event === 'presence' && e.json.data.status === 'offline'), 'offline', 15000);
  r = await other.get('/v1/presence?users=p-target');
  assert.equal(r.json['p-target'].status, 'offline');
  // a held connection counts as a heartbeat
  const st = new RawSSE(s.url, '/v1/events', { tok: target.tok });
  await st.ready;
  await sw.until((x) => x.events.filter((e) => e.event === 'presence').length >= 3, 'online again');
  await sleep(4000); // longer than the ttl: the connection keeps it online
  assert.equal((await other.get('/v1/presence?users=p-target')).json['p-target'].status, 'online');
  assert.equal(so.events.filter((e) => e.event === 'presence').length, 0, 'nobody else is told');
  st.close();
  sw.close();
  so.close();
  r = await watcher.post('/v1/presence/watch', { users: Array.from({ length: 201 }, (_, i) => `w${i}`) });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'too_many');
  r = await watcher.post('/v1/presence/watch', { users: ['ok', 'not ok'] });
  assert.equal(r.status, 400);
  r = await watcher.get('/v1/presence?users=');
  assert.equal(r.status, 400);
});

test('stop', async () => {
  await s.stop();
});
