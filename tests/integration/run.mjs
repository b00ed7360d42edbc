// run.mjs - run the integration suites against one build of larkd.
//
//   node tests/integration/run.mjs [suite ...]      (LARK_BUILD=build-asan for ASan)
//
// Each suite file registers tests on import and starts its own stacks; the
// runner runs them in order and ends with one "N passed, N failed" line.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './lib/harness.mjs';
import { killAll } from './lib/stack.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const suites = fs.readdirSync(here)
  .filter((f) => /^test_.*\.mjs$/.test(f))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

let passed = 0;
let failed = 0;
const build = process.env.LARK_BUILD || 'build';
for (const f of suites) {
  console.log(`# ${f} (${build})`);
  await import(path.join(here, f));
  const r = await run(`${f.replace(/\.mjs$/, '')}: `);
  passed += r.passed;
  failed += r.failed;
  killAll();
}
console.log(`integration (${build}): ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
