// harness.mjs - a tiny test runner: named tests, assertions, one summary
// line "N passed, N failed" (STYLE.md), exit status 1 on any failure.
//
// A test that sets up something outside this process (a PostgreSQL
// cluster, network namespaces) registers its tear-down with cleanup(fn):
// it runs when that test ends, whether it passed, failed or timed out.
// A suite that cannot run in this configuration says so with skip(): it is
// counted and printed with its reason, never silently dropped.

import assert from 'node:assert/strict';

export { assert };

const tests = [];
let cleanups = [];

/** Register a test. fn receives nothing; stacks are the file's business. */
export function test(name, fn, { timeout = 120000 } = {}) {
  tests.push({ name, fn, timeout });
}

/** Register a test that is not run here, with the reason. */
export function skip(name, reason) {
  tests.push({ name, skip: reason });
}

/**
 * Run fn (async, bounded to 60 s) when the current test ends, in reverse
 * order of registration; a cleanup that throws fails the test.
 */
export function cleanup(fn) {
  cleanups.push(fn);
}

function withTimeout(p, ms, name) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`"${name}" took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}

async function runCleanups(name) {
  const fns = cleanups.reverse();
  cleanups = [];
  const errors = [];
  for (const fn of fns) {
    try {
      await withTimeout(Promise.resolve().then(fn), 60000, `cleanup of ${name}`);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw errors[0];
}

/** Run the registered tests in order; returns { passed, failed, skipped }. */
export async function run(label = '') {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const only = process.env.LARK_TEST_ONLY ? new RegExp(process.env.LARK_TEST_ONLY) : null;
  for (const t of tests) {
    // a filter keeps a file's set-up and tear-down ("start", "stop")
    if (only && !only.test(t.name) && !/^(start|stop)/.test(t.name)) continue;
    if (t.skip) {
      skipped++;
      console.log(`skip ${label}${t.name}: ${t.skip}`);
      continue;
    }
    const t0 = Date.now();
    try {
      try {
        await withTimeout(Promise.resolve().then(t.fn), t.timeout, `test "${t.name}"`);
      } finally {
        await runCleanups(t.name);
      }
      passed++;
      console.log(`ok   ${label}${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${label}${t.name}\n     ${String(e && e.stack || e).split('\n').join('\n     ')}`);
    }
  }
  tests.length = 0;
  return { passed, failed, skipped };
}
