// push.mjs - lark-push for the tests: keys, fake providers, the daemon.
//
// PushRig makes a PKI (tests/fakes/pki.mjs), starts the fake APNs and the
// fake FCM on loopback, and runs build/lark-push against a Stack's
// database with every LARK_* setting pointing at the fakes. Like Stack,
// stop() SIGTERMs the daemon, expects exit status 0, and fails on any
// sanitizer report in its stderr.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makePki } from '../../fakes/pki.mjs';
import { FakeApns } from '../../fakes/apns.mjs';
import { FakeFcm } from '../../fakes/fcm.mjs';
import { SANITIZER, build, exited, track, waitExit, waitFor } from './stack.mjs';

export const APNS_KEY_ID = 'ABC123DEFG';
export const APNS_TEAM_ID = 'DEF123GHIJ';

export class PushRig {
  /** stack: a started Stack; env: extra LARK_* for lark-push */
  constructor(stack, env = {}) {
    this.stack = stack;
    this.env = env;
    this.log = path.join(stack.dir, 'lark-push.stderr');
    this.daemon = null; // the last one started
    this.daemons = [];  // every one started: { child, log }
  }

  async startFakes({ apnsDelayMs = 0, fcmDelayMs = 0 } = {}) {
    this.pki = makePki(path.join(this.stack.dir, 'pki'));
    this.apns = await new FakeApns({ tls: this.pki.tls, publicKey: this.pki.apnsPublicKey,
      keyId: APNS_KEY_ID, teamId: APNS_TEAM_ID, delayMs: apnsDelayMs }).start();
    this.fcm = new FakeFcm({ tls: this.pki.tls, publicKey: this.pki.fcmPublicKey,
      account: this.pki.account, delayMs: fcmDelayMs });
    await this.fcm.start();
    return this;
  }

  daemonEnv() {
    return {
      ...process.env,
      LARK_DATA: this.stack.dir,
      LARK_LOG_LEVEL: 'info',
      LARK_PUSH_CA_FILE: this.pki.caFile,
      LARK_APNS_ENDPOINT: this.apns.url,
      LARK_APNS_KEY: this.pki.apnsKeyFile,
      LARK_APNS_KEY_ID: APNS_KEY_ID,
      LARK_APNS_TEAM_ID: APNS_TEAM_ID,
      LARK_FCM_ENDPOINT: this.fcm.url,
      LARK_FCM_TOKEN_ENDPOINT: this.fcm.tokenUrl,
      LARK_FCM_CREDENTIALS: this.pki.fcmCredentials,
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=23',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      ...this.stack.env,
      // the stack's own database (a fresh PostgreSQL one on that back end)
      ...('LARK_DB' in this.stack.larkdEnv() ? { LARK_DB: this.stack.larkdEnv().LARK_DB } : {}),
      ...this.env,
    };
  }

  /** Start lark-push (logging to log) and wait for its "ready" line. */
  async startDaemon(log = this.log) {
    const before = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').length : 0;
    const out = fs.openSync(log, 'a');
    const child = spawn(path.join(build, 'lark-push'), [], {
      env: this.daemonEnv(), stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    track(child);
    this.daemon = child;
    this.daemons.push({ child, log });
    await waitFor(() => exited(child) ||
      fs.readFileSync(log, 'utf8').slice(before).includes(' ready '), 'lark-push ready', 20000);
    if (exited(child)) throw new Error(`lark-push exited at start:\n${fs.readFileSync(log, 'utf8')}`);
    return child;
  }

  kill9() {
    this.daemon.kill('SIGKILL');
    return waitExit(this.daemon, 5000);
  }

  logs() {
    return fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8').slice(-4000) : '';
  }

  /** Run build/lark-push-admin against the stack's database. */
  admin(...args) {
    return execFileSync(path.join(build, 'lark-push-admin'), args, {
      env: this.daemonEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** SIGTERM every daemon still running; each must exit 0. */
  async stopDaemon() {
    for (const { child, log } of this.daemons) {
      if (exited(child)) continue;
      child.kill('SIGTERM');
      if (!(await waitExit(child, 20000))) {
        child.kill('SIGKILL');
        throw new Error('lark-push did not stop within 20 s of SIGTERM');
      }
      if (child.exitCode !== 0) throw new Error(`lark-push exited ${child.exitCode}:\n${fs.readFileSync(log, 'utf8').slice(-4000)}`);
    }
  }

  sanitizerReport() {
    for (const log of new Set(this.daemons.map((d) => d.log))) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      const m = text.match(SANITIZER);
      if (m) return text.slice(Math.max(0, m.index - 200), m.index + 3000);
    }
    return null;
  }

  async stop() {
    try {
      await this.stopDaemon();
    } finally {
      await this.apns?.stop();
      await this.fcm?.stop();
    }
    const report = this.sanitizerReport();
    if (report) throw new Error(`sanitizer report in lark-push stderr:\n${report}`);
  }
}

/** A well-formed APNs token (64 hex) unique to name. */
export function apnsToken(name) {
  return Buffer.from(name.padEnd(32, '.').slice(0, 32)).toString('hex');
}

/** A well-formed FCM registration token unique to name. */
export function fcmToken(name) {
  return `f${Buffer.from(name).toString('hex')}:APA91b${'x'.repeat(100)}`;
}
