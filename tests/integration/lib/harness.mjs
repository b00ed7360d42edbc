// harness.mjs - a tiny test runner: named tests, assertions, one summary
// line "N passed, N failed" (STYLE.md), exit status 1 on any failure.

import assert from 'node:assert/strict';

export { assert };

const tests = [];

/** Register a test. fn receives nothing; stacks are the file's business. */
export function test(name, fn, { timeout = 120000 } = {}) {
  tests.push({ name, fn, timeout });
}

function withTimeout(p, ms, name) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`test "${name}" took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}

/** Run the registered tests in order; returns { passed, failed }. */
export async function run(label = '') {
  let passed = 0;
  let failed = 0;
  const only = process.env.LARK_TEST_ONLY ? new RegExp(process.env.LARK_TEST_ONLY) : null;
  for (const t of tests) {
    // a filter keeps a file's set-up and tear-down ("start", "stop")
    if (only && !only.test(t.name) && !/^(start|stop)/.test(t.name)) continue;
    const t0 = Date.now();
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, t.name);
      passed++;
      console.log(`ok   ${label}${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${label}${t.name}\n     ${String(e && e.stack || e).split('\n').join('\n     ')}`);
    }
  }
  tests.length = 0;
  return { passed, failed };
}
