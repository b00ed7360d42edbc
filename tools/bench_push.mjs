// tools/bench_push.mjs - pushes per second through lark-push, to the fake
// APNs (one HTTP/2 connection, TLS, ES256 provider token) and to the fake
// FCM (OAuth2 + HTTP v1), as `make bench` runs it (tools/bench.sh, scenario
// "push"). docs/BENCHMARKS.md ("Push") explains the figures.
//
// For each provider: a fresh lighttpd + larkd (tests/integration's Stack),
// N users with one device each, one group of all of them; one message to
// the group makes N push jobs in one transaction (groups of at most 4,000) (the coalescing window is
// 0). Then lark-push starts, and the clock runs from its first request to
// the fake's N-th delivery. The fakes run in this Node process.
//
// Environment: BENCH_PUSH_N (2000 devices per provider), BENCH_PUSH_INFLIGHT
// (lark-push's push_inflight, default 1000), LARK_BUILD (build),
// BENCH_RESULTS (JSON lines appended).

import fs from 'node:fs';
import { Stack, waitFor } from '../tests/integration/lib/stack.mjs';
import { Api } from '../tests/integration/lib/client.mjs';
import { PushRig, apnsToken, fcmToken } from '../tests/integration/lib/push.mjs';

const N = Number(process.env.BENCH_PUSH_N || 2000);
// larkd's group_max ceiling is 5,000 members: larger N uses several groups
const GROUP = Math.min(N, 4000);
const INFLIGHT = process.env.BENCH_PUSH_INFLIGHT || '1000';
const results = process.env.BENCH_RESULTS || `${process.env.LARK_BUILD || 'build'}/bench-results.jsonl`;

/** CPU time (user + system) lark-push has used, ms (from /proc). */
function daemonCpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return Math.round((ticks * 1000) / 100); // USER_HZ is 100 on Linux
}

async function pool(items, width, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

async function run(platform) {
  const s = await new Stack({
    LARK_SEND_RATE: '0', LARK_GROUP_MAX: String(GROUP + 1), LARK_PUSH_WINDOW_MS: '0',
    LARK_LOG_LEVEL: 'warn', LARK_SQLITE_SYNC: 'NORMAL',
  }).start();
  const rig = new PushRig(s, { LARK_PUSH_INFLIGHT: INFLIGHT, LARK_LOG_LEVEL: 'info' });
  try {
    await rig.startFakes();
    const users = Array.from({ length: N }, (_, i) => `u${i}`);
    const tok = (u) => (platform === 'apns' ? apnsToken(u) : fcmToken(u));
    await pool(users, 32, async (u) => {
      const r = await new Api(s.url, u).post('/v1/devices', { platform, token: tok(u), app: 'com.example.bench' });
      if (r.status !== 201) throw new Error(`device ${u}: ${r.status} ${r.body}`);
    });
    const admin = new Api(s.url, 'bench-sender');
    for (let i = 0; i < N; i += GROUP) {
      const members = users.slice(i, i + GROUP);
      const g = await admin.post('/v1/conversations', { type: 'group', title: 'bench', members });
      if (g.status !== 201) throw new Error(`group: ${g.status} ${g.body}`);
      const m = await admin.post('/v1/messages', { conversation_id: g.json.id, body: 'benchmark', client_msg_id: `b${i}` });
      if (m.status !== 201) throw new Error(`send: ${m.status}`);
    }
    const fake = platform === 'apns' ? rig.apns : rig.fcm;
    const started = Date.now();
    await rig.startDaemon();
    await waitFor(() => fake.delivered.length >= N, `${N} ${platform} deliveries`, 300000, 10);
    const cpuMs = daemonCpuMs(rig.daemon.pid);
    const first = fake.requests[0].at;
    const last = fake.delivered[fake.delivered.length - 1].at;
    const secs = (last - first) / 1000;
    const out = {
      bench: 'push', provider: platform, devices: N, inflight: Number(INFLIGHT),
      seconds: Number(secs.toFixed(3)), pushes_per_second: Math.round(N / secs),
      from_start_seconds: Number(((last - started) / 1000).toFixed(3)),
      connections: fake.sessions, requests: fake.requests.length,
      daemon_cpu_ms: cpuMs, daemon_cpu_us_per_push: Math.round((cpuMs * 1000) / N),
      http: platform === 'fcm' ? [...new Set(fake.requests.map((r) => r.http))].join(',') : '2.0',
    };
    console.log(`push ${platform}: ${N} notifications in ${secs.toFixed(2)} s = ${out.pushes_per_second}/s ` +
      `(${out.from_start_seconds} s from daemon start; ${fake.sessions} connection(s), HTTP ${out.http}; ` +
      `lark-push CPU ${cpuMs} ms = ${out.daemon_cpu_us_per_push} us/push)`);
    fs.appendFileSync(results, JSON.stringify({ ...out, at: new Date().toISOString() }) + '\n');
    return out;
  } finally {
    await rig.stop();
    await s.stop();
  }
}

for (const p of (process.env.BENCH_PUSH_PROVIDERS || 'apns fcm').split(' ')) await run(p);
process.exit(0);
