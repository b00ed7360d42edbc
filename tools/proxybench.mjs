// proxybench.mjs - time to the first live message behind each proxy, per
// transport (docs/PROXIES.md): the demo page in headless Chromium behind
// each proxy of the matrix (tests/integration/lib/proxies.mjs), 'auto' and
// each transport forced, several runs each; prints a Markdown table of
// medians.
//
//   node tools/proxybench.mjs [runs]      (default 5; LARK_BUILD as the tests;
//                                          LARK_BENCH_ONLY=regex: those proxies)
//
// "First live message": from the start of the page load until the page's
// lark.js delivered, from its stream, a message that a sender started
// writing at that moment (tests/browser/lib/proxied.mjs). A combination
// that delivers nothing within 12 s is tried once and reported as such.

import { Stack, devSecret, killAll } from '../tests/integration/lib/stack.mjs';
import { allProxies } from '../tests/integration/lib/proxies.mjs';
import { launch } from '../tests/browser/lib/browser.mjs';
import { visit } from '../tests/browser/lib/proxied.mjs';

const runs = Number(process.argv[2] || 5);
const LIMIT = 12000;
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : Math.round((v[v.length / 2 - 1] + v[v.length / 2]) / 2);
};

const s = await new Stack({ LARK_JWT_SECRET: devSecret, LARK_DEV_TOKENS: '1', LARK_SEND_RATE: '0' }).start();
const proxies = [null, ...allProxies(s.port)];
let browser;
try {
  for (const p of proxies) if (p) await p.start();
  browser = await launch();
  const rows = [];
  let n = 0;
  const only = process.env.LARK_BENCH_ONLY ? new RegExp(process.env.LARK_BENCH_ONLY) : null;
  for (const p of proxies) {
    if (only && !only.test(p ? p.name : '(none)')) continue;
    const row = { proxy: p ? p.name : '(none)', cells: {} };
    for (const transport of ['auto', 'ws', 'sse', 'poll']) {
      const times = [];
      const settled = new Set();
      for (let i = 0; i < runs; i++) {
        n++;
        const v = await visit(browser, s, p, { user: `bench${n}`, sender: `benchsender${n}`, transport, limit: LIMIT });
        await v.context.close();
        if (v.errors.length) console.error(`${row.proxy} ${transport} run ${i + 1}: page errors: ${v.errors.join('; ')}`);
        if (v.firstMs === null) break;
        times.push(v.firstMs);
        settled.add(v.transport);
      }
      row.cells[transport] = times.length
        ? `${median(times)} ms${transport === 'auto' ? ` (${[...settled].join('/')})` : ''} [${Math.min(...times)}–${Math.max(...times)}]`
        : `none in ${LIMIT / 1000} s`;
      console.error(`${row.proxy} ${transport}: ${row.cells[transport]}`);
    }
    rows.push(row);
  }
  console.log(`\n${runs} runs each; median [min–max], from the start of the page load\n`);
  console.log('| proxy | auto (settled on) | WebSocket | SSE | long-poll |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.proxy} | ${r.cells.auto} | ${r.cells.ws} | ${r.cells.sse} | ${r.cells.poll} |`);
} finally {
  if (browser) await browser.close();
  for (const p of proxies) if (p) await p.stop();
  await s.stop();
  killAll();
}
