// run.mjs - the browser end-to-end suites: the demo page (www/) in headless
// Chromium against real lighttpd + larkd.
//
//   node tests/browser/run.mjs [suite ...]     (LARK_BUILD=build-asan for ASan)
//
// Chromium missing is a failure, not a skip: CI installs it (tools/deps.sh
// test). Screenshots go to tests/artifacts/. Ends with one
// "N passed, N failed" line.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../integration/lib/harness.mjs';
import { killAll } from '../integration/lib/stack.mjs';
import { missing } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const build = process.env.LARK_BUILD || 'build';

const why = await missing();
if (why) {
  console.log(`FAIL browser tests cannot run: ${why}`);
  console.log(`browser (${build}): 0 passed, 1 failed`);
  process.exit(1);
}

const suites = fs.readdirSync(here)
  .filter((f) => /^test_.*\.mjs$/.test(f))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

let passed = 0;
let failed = 0;
for (const f of suites) {
  console.log(`# ${f} (${build})`);
  await import(path.join(here, f));
  const r = await run(`${f.replace(/\.mjs$/, '')}: `);
  passed += r.passed;
  failed += r.failed;
  killAll();
}
console.log(`browser (${build}): ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
