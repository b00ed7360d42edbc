// test_push.mjs - push for offline users, end to end: larkd stores the
// jobs, lark-push sends them to fake APNs (HTTP/2 + TLS, ES256 provider
// tokens) and fake FCM (OAuth2 RS256 assertion + HTTP v1), both verifying
// every JWT with the matching public key (tests/fakes/).
//
// Covers the devices API, one notification per coalescing window, nothing
// for online users (or users who come back before the push goes out), dead
// tokens removed, 503 + Retry-After retried and delivered once, a job that
// always fails landing in push_dead after N attempts (and re-queued by
// lark-push-admin), kill -9 of lark-push mid-batch losing nothing, and the
// counters on GET /metrics.

import { assert, test } from './lib/harness.mjs';
import { Stack, sleep, waitFor } from './lib/stack.mjs';
import { Api, metrics } from './lib/client.mjs';
import { PushRig, apnsToken, fcmToken } from './lib/push.mjs';

const WINDOW_MS = 800;
const APP = 'com.example.lark';
let s;
let rig;

async function device(user, platform, token, app = APP) {
  const r = await new Api(s.url, user).post('/v1/devices', { platform, token, app });
  assert.ok(r.status === 201 || r.status === 200, r.body);
  return r;
}

test('start', async () => {
  s = await new Stack({
    LARK_SEND_RATE: '0',
    LARK_GROUP_MAX: '1000',
    LARK_PUSH_WINDOW_MS: String(WINDOW_MS),
    LARK_PUSH_ATTEMPTS: '3',
    LARK_PUSH_BACKOFF_MS: '100',
    LARK_PUSH_BACKOFF_MAX_MS: '400',
    LARK_PUSH_TIMEOUT_MS: '3000',
    LARK_PUSH_LEASE_MS: '4000',
  }).start();
  rig = new PushRig(s);
  await rig.startFakes();
  await rig.startDaemon();
});

test('devices: register, list, re-register, validate, delete own only', async () => {
  const ann = new Api(s.url, 'ann');
  const tok = apnsToken('ann-phone');
  let r = await ann.post('/v1/devices', { platform: 'apns', token: tok.toUpperCase(), app: APP });
  assert.equal(r.status, 201, r.body);
  assert.equal(r.json.token, tok, 'APNs tokens are stored lowercase');
  assert.equal(r.json.platform, 'apns');
  assert.equal(r.json.app, APP);
  assert.match(r.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  r = await ann.post('/v1/devices', { platform: 'apns', token: tok, app: 'com.example.other' });
  assert.equal(r.status, 200, 'the same token again is not a new device');
  r = await ann.post('/v1/devices', { platform: 'fcm', token: fcmToken('ann-tablet'), app: 'com.example.lark' });
  assert.equal(r.status, 201);
  r = await ann.get('/v1/devices');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.devices.map((d) => [d.platform, d.app]).sort(),
    [['apns', 'com.example.other'], ['fcm', 'com.example.lark']]);

  const bad = [
    [{ platform: 'apns', token: 'abc', app: APP }, 'invalid_field'],
    [{ platform: 'apns', token: 'g'.repeat(64), app: APP }, 'invalid_field'],
    [{ platform: 'fcm', token: 'has space', app: APP }, 'invalid_field'],
    [{ platform: 'fcm', token: 'x'.repeat(4097), app: APP }, 'invalid_field'],
    [{ platform: 'webpush', token: 'abc', app: APP }, 'invalid_field'],
    [{ platform: 'fcm', token: 'abc', app: 'nodots' }, 'invalid_field'],
    [{ platform: 'fcm', token: 'abc', app: 'com..x' }, 'invalid_field'],
    [{ platform: 'fcm', token: 'abc', app: 'com.ex ample' }, 'invalid_field'],
    [{ platform: 'fcm', token: 'abc' }, 'missing_field'],
    [{ platform: 'fcm', token: 7, app: APP }, 'wrong_type'],
  ];
  for (const [body, code] of bad) {
    r = await ann.post('/v1/devices', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.code, code, JSON.stringify(body));
  }
  // another user cannot see or delete ann's device
  const ben = new Api(s.url, 'ben');
  r = await ben.get('/v1/devices');
  assert.deepEqual(r.json.devices, []);
  r = await ben.post('/v1/devices', { platform: 'fcm', token: fcmToken('ben-phone'), app: APP });
  assert.equal(r.status, 201);
  r = await request(ben, 'DELETE', `/v1/devices/${tok}`);
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
  r = await request(ann, 'DELETE', `/v1/devices/${tok}`);
  assert.equal(r.status, 204);
  r = await request(ann, 'DELETE', `/v1/devices/${tok}`);
  assert.equal(r.status, 404);
  r = await ann.get('/v1/devices');
  assert.equal(r.json.devices.length, 1);
  // a token registered by another user moves to them (the phone changed hands)
  r = await ben.post('/v1/devices', { platform: 'fcm', token: fcmToken('ann-tablet'), app: APP });
  assert.equal(r.status, 201);
  assert.equal((await ann.get('/v1/devices')).json.devices.length, 0);
  assert.equal((await ben.get('/v1/devices')).json.devices.length, 2);
  r = await request(ben, 'GET', '/v1/devices', { tok: 'x' });
  assert.equal(r.status, 401);
});

function request(api, method, path, opts = {}) {
  return import('./lib/client.mjs').then(({ request: rq }) => rq(api.base, method, path, { tok: api.tok, ...opts }));
}

test('an offline user gets exactly one notification per coalescing window', async () => {
  const alice = new Api(s.url, 'alice');
  const tok = apnsToken('bob-phone');
  const ftok = fcmToken('bob-pixel');
  await device('bob', 'apns', tok);
  await device('bob', 'fcm', ftok);
  for (let i = 1; i <= 5; i++) assert.equal((await alice.send('bob', `hello ${i}`)).status, 201);
  await waitFor(() => rig.apns.for(tok).length >= 1 && rig.fcm.for(ftok).length >= 1, 'bob notified', 10000);
  await sleep(WINDOW_MS + 700); // anything more would have arrived by now
  const got = rig.apns.for(tok);
  assert.equal(got.length, 1, 'one APNs notification for the burst');
  const n = got[0];
  assert.equal(n.payload.lark.count, '5');
  assert.equal(n.payload.aps.alert.title, 'alice');
  assert.match(n.payload.aps.alert.body, /^hello 5 \(\+4 more\)$/);
  assert.equal(n.headers['apns-topic'], APP, 'topic: the device app');
  assert.equal(n.headers['apns-push-type'], 'alert');
  assert.equal(n.headers['apns-priority'], '10');
  assert.equal(n.headers['apns-collapse-id'], n.payload.lark.conversation_id);
  assert.ok(Number(n.headers['apns-expiration']) > Date.now() / 1000);
  const f = rig.fcm.for(ftok);
  assert.equal(f.length, 1, 'one FCM notification for the burst');
  assert.equal(f[0].payload.message.data.count, '5');
  assert.equal(f[0].payload.message.notification.title, 'alice');
  assert.equal(f[0].payload.message.android.collapse_key, n.payload.lark.conversation_id);
  assert.ok(rig.fcm.tokenRequests >= 1, 'an OAuth2 access token was fetched');
  // the next message opens a new window: a second notification
  await alice.send('bob', 'later');
  await waitFor(() => rig.apns.for(tok).length === 2, 'second window', 10000);
  assert.equal(rig.apns.for(tok)[1].payload.lark.count, '1');
  assert.equal(rig.apns.for(tok)[1].payload.aps.alert.body, 'later');
  // the sender's own devices are never notified of its own messages
  await device('alice', 'apns', apnsToken('alice-phone'));
  await alice.send('bob', 'one more');
  await waitFor(() => rig.apns.for(tok).length === 3, 'third window', 10000);
  await sleep(300);
  assert.equal(rig.apns.for(apnsToken('alice-phone')).length, 0);
});

test('an online user gets none; one who comes back before the push gets none', async () => {
  const alice = new Api(s.url, 'alice');
  const carl = new Api(s.url, 'carl');
  const dana = new Api(s.url, 'dana');
  await device('carl', 'apns', apnsToken('carl-phone'));
  await device('dana', 'fcm', fcmToken('dana-phone'));
  assert.equal((await carl.post('/v1/presence/heartbeat')).status, 200);
  const before = await metrics(s.url);
  await alice.send('carl', 'you are online');
  await alice.send('dana', 'you are offline, for now');
  // dana opens the app inside the coalescing window
  assert.equal((await dana.post('/v1/presence/heartbeat')).status, 200);
  await sleep(WINDOW_MS + 1200);
  assert.equal(rig.apns.for(apnsToken('carl-phone')).length, 0, 'online: no push');
  assert.equal(rig.fcm.for(fcmToken('dana-phone')).length, 0, 'back online: no push');
  const after = await metrics(s.url);
  assert.equal(after['lark_push_skipped_total{provider="fcm"}'] -
    (before['lark_push_skipped_total{provider="fcm"}'] || 0), 1, 'dana\'s job was skipped');
});

test('a dead token is removed (APNs 410, APNs BadDeviceToken, FCM UNREGISTERED, FCM invalid)', async () => {
  const alice = new Api(s.url, 'alice');
  const cases = [
    ['ed', 'apns', apnsToken('ed-old'), () => rig.apns.script(apnsToken('ed-old'), [{ status: 410 }])],
    ['flo', 'apns', apnsToken('flo-bad'), () => rig.apns.script(apnsToken('flo-bad'), [{ status: 400, reason: 'BadDeviceToken' }])],
    ['gus', 'fcm', fcmToken('gus-old'), () => rig.fcm.script(fcmToken('gus-old'), [{ status: 404, error: 'UNREGISTERED' }])],
    ['hal', 'fcm', fcmToken('hal-bad'), () => rig.fcm.script(fcmToken('hal-bad'), [{ status: 400, error: 'INVALID_TOKEN' }])],
  ];
  const before = await metrics(s.url);
  for (const [user, platform, tok, arm] of cases) {
    arm();
    await device(user, platform, tok);
    await device(user, platform === 'apns' ? 'fcm' : 'apns',
      platform === 'apns' ? fcmToken(`${user}-ok`) : apnsToken(`${user}-ok`));
    await alice.send(user, 'are you there?');
  }
  for (const [user, , tok] of cases) {
    const u = new Api(s.url, user);
    await waitFor(async () => {
      const d = (await u.get('/v1/devices')).json.devices;
      return d.length === 1 && d[0].token !== tok;
    }, `${user}'s dead token removed`, 10000);
  }
  const after = await metrics(s.url);
  const removed = (p) => after[`lark_push_tokens_removed_total{provider="${p}"}`] -
    (before[`lark_push_tokens_removed_total{provider="${p}"}`] || 0);
  assert.equal(removed('apns'), 2);
  assert.equal(removed('fcm'), 2);
});

test('a 503 with Retry-After is retried, then delivered exactly once', async () => {
  const alice = new Api(s.url, 'alice');
  const tok = apnsToken('ivy-phone');
  const ftok = fcmToken('ivy-pixel');
  rig.apns.script(tok, [{ status: 503, reason: 'ServiceUnavailable', retryAfter: 1 }, { status: 200 }]);
  rig.fcm.script(ftok, [{ status: 503, error: 'UNAVAILABLE' }, { status: 200 }]);
  await device('ivy', 'apns', tok);
  await device('ivy', 'fcm', ftok);
  await alice.send('ivy', 'try again');
  await waitFor(() => rig.apns.for(tok).length === 1 && rig.fcm.for(ftok).length === 1, 'ivy delivered', 15000);
  await sleep(1000);
  const tries = rig.apns.requests.filter((r) => r.token === tok);
  assert.deepEqual(tries.map((r) => r.status), [503, 200]);
  assert.ok(tries[1].at - tries[0].at >= 950, `Retry-After: 1 honoured (${tries[1].at - tries[0].at} ms)`);
  assert.equal(rig.apns.for(tok).length, 1, 'delivered once');
  assert.deepEqual(rig.fcm.requests.filter((r) => r.token === ftok).map((r) => r.status), [503, 200]);
  assert.equal(rig.fcm.for(ftok).length, 1);
});

test('a job that always fails lands in push_dead after N attempts; the admin tool re-queues it', async () => {
  const alice = new Api(s.url, 'alice');
  const tok = apnsToken('jay-phone');
  rig.apns.script(tok, [{ status: 500, reason: 'InternalServerError' }]);
  await device('jay', 'apns', tok);
  await alice.send('jay', 'doomed');
  let dead;
  await waitFor(() => {
    dead = JSON.parse(rig.admin('list', '--json')).filter((d) => d.token === tok);
    return dead.length === 1;
  }, 'a dead letter', 15000);
  assert.equal(rig.apns.requests.filter((r) => r.token === tok).length, 3, 'push_attempts = 3 tries');
  assert.equal(dead[0].attempts, 3);
  assert.equal(dead[0].user, 'jay');
  assert.equal(dead[0].last_error, 'InternalServerError');
  const m = await metrics(s.url);
  assert.ok(m['lark_push_dead_total{provider="apns"}'] >= 1);
  assert.ok(m.lark_push_dead_letters >= 1);
  // the provider recovers; the operator re-queues
  rig.apns.script(tok, [{ status: 200 }]);
  assert.match(rig.admin('requeue', String(dead[0].id)), /1 job\(s\) queued/);
  await waitFor(() => rig.apns.for(tok).length === 1, 're-queued job delivered', 10000);
  assert.equal(JSON.parse(rig.admin('list', '--json')).filter((d) => d.token === tok).length, 0);
  assert.throws(() => rig.admin('requeue', String(dead[0].id)), /no dead letter/);
});

test('kill -9 of lark-push mid-batch loses no job', async () => {
  const alice = new Api(s.url, 'alice');
  const users = Array.from({ length: 60 }, (_, i) => `crowd${i}`);
  for (const u of users) await device(u, 'apns', apnsToken(u));
  const g = await alice.post('/v1/conversations', { type: 'group', title: 'crowd', members: users });
  assert.equal(g.status, 201, g.body);
  rig.apns.delayMs = 400; // answers take a while: requests pile up in flight
  const seen = rig.apns.requests.length;
  assert.equal((await alice.post('/v1/messages', { conversation_id: g.json.id, body: 'all hands', client_msg_id: 'crowd-1' })).status, 201);
  await waitFor(() => rig.apns.requests.length - seen >= 5, 'requests in flight', 10000, 5);
  await rig.kill9();
  const deliveredBefore = new Set(rig.apns.delivered.map((d) => d.token));
  rig.apns.delayMs = 0;
  await rig.startDaemon();
  await waitFor(() => users.every((u) => rig.apns.for(apnsToken(u)).length >= 1),
    'every member notified after the restart', 20000);
  await waitFor(async () => (await metrics(s.url)).lark_push_jobs_queued === 0, 'queue empty', 10000);
  const m = await metrics(s.url); // after the outcomes were recorded
  assert.ok(deliveredBefore.size < users.length, 'the kill came mid-batch');
  assert.ok(m['lark_push_sent_total{provider="apns"}'] >= users.length - deliveredBefore.size);
  assert.ok(rig.apns.sessions >= 2, 'a new connection after the restart');
});

test('APNs requests share one HTTP/2 connection; provider tokens verified; metrics', async () => {
  const m = await metrics(s.url);
  for (const p of ['apns', 'fcm']) {
    assert.ok(m[`lark_push_sent_total{provider="${p}"}`] > 0, p);
    assert.ok(m[`lark_push_provider_latency_seconds_count{provider="${p}"}`] > 0, p);
    assert.ok(m[`lark_push_failed_total{provider="${p}"}`] > 0, p);
    assert.ok(m[`lark_push_retried_total{provider="${p}"}`] > 0, p);
  }
  // one connection per daemon run (two runs: the kill -9 test restarted it)
  assert.equal(rig.apns.sessions, 2, `APNs connections: ${rig.apns.sessions}`);
  assert.ok(rig.apns.jwtsSeen.size >= 1 && rig.apns.jwtsSeen.size <= 2, 'provider token reused');
  assert.ok(rig.apns.requests.every((r) => r.status !== 403), 'no provider token refused');
});

test('stop', async () => {
  try {
    await rig.stop();
  } finally {
    await s.stop();
  }
});
