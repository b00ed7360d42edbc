// test_chat.mjs - two people chat through the demo page in headless
// Chromium: messages both ways, delivered and read ticks, typing, presence;
// then three people on three transports (WebSocket, SSE, long-poll) in one
// group; then 'auto' falling back when a network blocks WebSocket and SSE.

import { assert, test } from '../integration/lib/harness.mjs';
import { Stack, devSecret } from '../integration/lib/stack.mjs';
import { Api, token } from '../integration/lib/client.mjs';
import {
  chatWith, launch, noPageErrors, person, say, screenshot, shown, untilShown,
} from './lib/browser.mjs';

const WS = 'ws';

let s;
let browser;
const people = [];

async function join(user, transport, opts) {
  const p = await person(browser, s, user, transport, opts);
  people.push(p);
  return p;
}

test('start: larkd with development tokens, lighttpd, Chromium', async () => {
  s = await new Stack({
    LARK_JWT_SECRET: devSecret, LARK_DEV_TOKENS: '1', LARK_PRESENCE_TTL: '4', LARK_PRESENCE_INTERVAL: '1',
  }).start();
  browser = await launch();
});

test('two people chat: messages, delivered and read ticks, typing, presence', async () => {
  const alice = await join('alice', WS);
  const bob = await join('bob', 'sse');
  assert.equal(await alice.page.getAttribute('#status', 'data-transport'), WS);
  assert.equal(await bob.page.getAttribute('#status', 'data-transport'), 'sse');

  await chatWith(alice, 'bob');
  await say(alice, 'Hi Bob! 👋');
  const [first] = await untilShown(alice, (m) => m.length === 1 && m[0].seq === 1, 'her message stored');
  assert.equal(first.body, 'Hi Bob! 👋');

  // Bob's page got it without opening the chat: his client acknowledged
  // it, so Alice's tick turns "delivered"; the chat shows one unread.
  await bob.page.waitForSelector('#conversations li[data-user=alice] .unread');
  assert.equal(await bob.page.textContent('#conversations li[data-user=alice] .unread'), '1');
  await untilShown(alice, (m) => m[0].status === 'delivered', 'delivered tick');
  assert.equal(await alice.page.getAttribute('#conversations li[data-user=bob] .dot', 'data-status'), 'online');

  // Bob opens it: read.
  await bob.page.click('#conversations li[data-user=alice]');
  const atBob = await untilShown(bob, (m) => m.length === 1, 'the message at Bob');
  assert.deepEqual(atBob.map((m) => [m.sender, m.body]), [['alice', 'Hi Bob! 👋']]);
  await untilShown(alice, (m) => m[0].status === 'read', 'read tick');
  await bob.page.waitForSelector('#conversations li[data-user=alice] .unread', { state: 'detached' });

  // Bob types: Alice sees it.
  await bob.page.type('#composer input[name=body]', 'Hello Al', { delay: 20 });
  await alice.page.waitForFunction(() => document.querySelector('#typing').textContent === 'bob is typing…');
  await bob.page.press('#composer input[name=body]', 'End');
  await bob.page.type('#composer input[name=body]', 'ice!');
  await bob.page.press('#composer input[name=body]', 'Enter');
  const atAlice = await untilShown(alice, (m) => m.length === 2, 'the reply at Alice');
  assert.deepEqual(atAlice.map((m) => [m.seq, m.sender, m.body]), [[1, 'alice', 'Hi Bob! 👋'], [2, 'bob', 'Hello Alice!']]);
  // the reply ended the typing notice
  assert.equal(await alice.page.textContent('#typing'), '');
  // Alice has the chat open: Bob's message is read at once.
  await untilShown(bob, (m) => m[1] && m[1].status === 'read', 'read tick at Bob');
  assert.equal(await alice.page.textContent('#chat-head .sub'), 'online');

  await screenshot(alice, 'chat-alice');
  await screenshot(bob, 'chat-bob');
  noPageErrors(alice, bob);
});

test('after a reload, your own messages show the ticks the server knows', async () => {
  // Alice's first message was read by Bob above; a fresh page must say so
  // as soon as the conversation's members (their read positions) arrive,
  // not show "sent" until some later event redraws the list.
  const alice = people.find((p) => p.user === 'alice');
  await alice.page.reload();
  await alice.page.waitForSelector('#status[data-state=open]');
  await alice.page.click('#conversations li[data-user=bob]');
  const mine = await untilShown(alice, (m) => m.length === 2 && m[0].status === 'read',
    'the read tick on her own message after the reload', 5000);
  assert.deepEqual(mine.map((m) => [m.sender, m.status || null]), [['alice', 'read'], ['bob', null]]);
  noPageErrors(alice);
});

test('history: scroll back loads older pages, in order, nothing twice', async () => {
  const carl = await join('carl', 'sse');
  const dana = await join('dana', 'poll');
  await chatWith(carl, 'dana');
  await say(carl, 'msg 1');
  await untilShown(carl, (m) => m.length === 1 && m[0].seq === 1, 'first stored');
  // 69 more through the API as Carl's other device (faster than typing).
  const convId = await carl.page.evaluate(() => window.larkDemo.current);
  await carl.page.evaluate(async (id) => {
    for (let i = 2; i <= 70; i++) await window.larkDemo.lark.send({ conversation_id: id, body: `msg ${i}` });
  }, convId);
  await untilShown(carl, (m) => m.length === 70, '70 at Carl');
  // Dana opens the chat fresh: the newest page, then older ones on scroll.
  await dana.page.reload();
  await dana.page.waitForSelector('#status[data-state=open]');
  await dana.page.click('#conversations li[data-user=carl]');
  const page1 = await untilShown(dana, (m) => m.length >= 30, 'a first page');
  assert.equal(page1[page1.length - 1].body, 'msg 70');
  for (let i = 0; i < 10; i++) {
    if ((await shown(dana)).length === 70) break;
    await dana.page.evaluate(() => { document.querySelector('#messages').scrollTop = 0; });
    await dana.page.waitForTimeout(300);
  }
  const all = await untilShown(dana, (m) => m.length === 70, 'all 70 after scrolling back');
  assert.deepEqual(all.map((m) => m.seq), Array.from({ length: 70 }, (_, i) => i + 1));
  assert.deepEqual(all.map((m) => m.body), Array.from({ length: 70 }, (_, i) => `msg ${i + 1}`));
  assert.equal(await dana.page.textContent('#messages li.edge'), 'The beginning of this conversation');
  noPageErrors(carl, dana);
});

test('three transports in one group: WebSocket, SSE and long-poll chat together', async () => {
  const eve = await join('eve', WS);
  const finn = await join('finn', 'sse');
  const gus = await join('gus', 'poll');
  for (const [p, t] of [[eve, WS], [finn, 'sse'], [gus, 'poll']])
    assert.equal(await p.page.getAttribute('#status', 'data-transport'), t);

  await eve.page.fill('#new-chat input[name=with]', 'finn, gus');
  await eve.page.press('#new-chat input[name=with]', 'Enter');
  for (const p of [finn, gus]) {
    await p.page.waitForSelector('#conversations li[data-name="eve, finn, gus"]');
    await p.page.click('#conversations li[data-name="eve, finn, gus"]');
  }
  await eve.page.waitForSelector('#conversations li.active[data-name="eve, finn, gus"]');
  await say(eve, 'from ws');
  await untilShown(finn, (m) => m.length === 1, 'first at finn');
  await say(finn, 'from sse');
  await untilShown(gus, (m) => m.length === 2, 'two at gus');
  await say(gus, 'from poll');
  const want = [[1, 'eve', 'from ws'], [2, 'finn', 'from sse'], [3, 'gus', 'from poll']];
  for (const p of [eve, finn, gus]) {
    const got = await untilShown(p, (m) => m.length === 3 && m.every((x) => x.seq), `three at ${p.user}`);
    assert.deepEqual(got.map((m) => [m.seq, m.sender, m.body]), want, p.user);
  }
  // everyone has the group open, so every message ends up read
  for (const p of [eve, finn, gus])
    await untilShown(p, (m) => m.filter((x) => x.sender === p.user).every((x) => x.status === 'read'), `${p.user}'s ticks read`);
  for (const p of [eve, finn, gus]) await screenshot(p, `group-${p.user}-${await p.page.getAttribute('#status', 'data-transport')}`);
  noPageErrors(eve, finn, gus);
});

test("auto: a network that blocks WebSocket and SSE ends on long-poll, and it is remembered", async () => {
  const hank = await join('hank', 'auto', {
    setup: async (page) => {
      // A proxy that accepts the upgrade and then drops it, and one that
      // refuses event streams.
      await page.routeWebSocket(/\/v1\/ws/, (ws) => ws.close());
      await page.route(/\/v1\/events/, (route) => route.abort());
    },
  });
  assert.equal(await hank.page.getAttribute('#status', 'data-transport'), 'poll');
  const remembered = await hank.page.evaluate(() => JSON.parse(localStorage.getItem('lark.transport')));
  assert.equal(remembered.transport, 'poll');
  // it works: a message from elsewhere arrives
  const ivy = await join('ivy', 'sse');
  await chatWith(ivy, 'hank');
  await say(ivy, 'can you hear me?');
  await hank.page.waitForSelector('#conversations li[data-user=ivy]');
  await hank.page.click('#conversations li[data-user=ivy]');
  await untilShown(hank, (m) => m.length === 1 && m[0].body === 'can you hear me?', 'over long-poll');
  // next visit starts with what worked
  await hank.page.reload();
  await hank.page.waitForSelector('#status[data-state=open]');
  assert.equal(await hank.page.getAttribute('#status', 'data-transport'), 'poll');
  noPageErrors(hank, ivy);
});

test('auto without obstacles picks WebSocket', async () => {
  const jo = await join('jo', 'auto');
  assert.equal(await jo.page.getAttribute('#status', 'data-transport'), 'ws');
  const remembered = await jo.page.evaluate(() => JSON.parse(localStorage.getItem('lark.transport')));
  assert.equal(remembered.transport, 'ws');
  noPageErrors(jo);
});

test('the README screenshot: a chat with ticks and typing, a group, unread badges, presence', async () => {
  const maya = await join('maya', 'auto');
  const noah = await join('noah', 'sse');
  const olga = await join('olga', 'poll');
  // quinn writes from another client, then leaves: unread, offline
  const quinn = new Api(s.url, 'quinn');
  quinn.tok = token('quinn', { secret: devSecret });
  assert.equal((await quinn.send('maya', 'Are the slides ready for Friday?')).status, 201);
  assert.equal((await quinn.send('maya', 'No rush, Monday works too.')).status, 201);
  await olga.page.fill('#new-chat input[name=with]', 'maya, pete');
  await olga.page.press('#new-chat input[name=with]', 'Enter');
  await olga.page.waitForSelector('#conversations li.active[data-name="maya, olga, pete"]');
  await say(olga, 'Standup moves to 10:15 today ☕');

  await chatWith(maya, 'noah');
  await say(maya, 'Hey Noah! Did the deploy go out? 🚀');
  await noah.page.click('#conversations li[data-user=maya]');
  await untilShown(noah, (m) => m.length === 1, 'at noah');
  await say(noah, 'Yes, ten minutes ago. All green ✅');
  await untilShown(maya, (m) => m.length === 2, 'reply at maya');
  await say(maya, 'Great, thanks! Lunch at 12:30?');
  await untilShown(maya, (m) => m.length === 3 && m[2].status === 'read', 'read by noah');
  await noah.page.type('#composer input[name=body]', 'Sure, see y', { delay: 15 });
  await maya.page.waitForFunction(() => document.querySelector('#typing').textContent === 'noah is typing…');
  assert.equal(await maya.page.textContent('#conversations li[data-user=quinn] .unread'), '2');
  assert.equal(await maya.page.textContent('#conversations li[data-name="maya, olga, pete"] .unread'), '1');
  assert.equal(await maya.page.getAttribute('#conversations li[data-user=noah] .dot', 'data-status'), 'online');
  assert.equal(await maya.page.getAttribute('#conversations li[data-user=quinn] .dot', 'data-status'), 'offline');
  await screenshot(maya, 'demo');
  noPageErrors(maya, noah, olga);
});

test('stop', async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (s) await s.stop();
});
