// run.mjs - run the integration suites against one build of larkd and one
// store.
//
//   node tests/integration/run.mjs [--backend=sqlite|postgres] [suite ...]
//
// LARK_BUILD=build-asan selects the ASan build; --backend (or
// LARK_TEST_BACKEND) the store every Stack gets: sqlite (default, a
// database file in the stack's data directory) or postgres (a fresh
// database per Stack in one throwaway cluster this run starts and removes,
// lib/pg.mjs). Each suite file registers tests on import and starts its own
// stacks; the runner runs them in order and ends with one
// "N passed, N failed" line.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
for (const a of args.filter((x) => x.startsWith('--backend='))) process.env.LARK_TEST_BACKEND = a.slice(10);
const wanted = args.filter((x) => !x.startsWith('--'));

// Ctrl-C or a CI timeout: leave through process.exit so that the exit hooks
// kill the servers, stop PostgreSQL and remove network namespaces.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));

// imported after LARK_TEST_BACKEND is final: stack.mjs reads it once
const { run } = await import('./lib/harness.mjs');
const { killAll, backend } = await import('./lib/stack.mjs');
const { stopSharedCluster } = await import('./lib/pg.mjs');

const suites = fs.readdirSync(here)
  .filter((f) => /^test_.*\.mjs$/.test(f))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

let passed = 0;
let failed = 0;
let skipped = 0;
const build = process.env.LARK_BUILD || 'build';
for (const f of suites) {
  console.log(`# ${f} (${build}, ${backend})`);
  await import(path.join(here, f));
  const r = await run(`${f.replace(/\.mjs$/, '')}: `);
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  killAll();
}
await stopSharedCluster();
console.log(`integration (${build}, ${backend}): ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
