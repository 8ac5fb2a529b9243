import assert from 'node:assert/strict';
import { pbkdf2Sync, pbkdf2 } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { cliEnv } from '../../../test/helpers/cli.js';
import { lowerHelperThreadPriority } from './thread-priority.js';

function niceOf(tid: number): number {
  // Field 19 of /proc/<pid>/task/<tid>/stat (after the parenthesised name) is the nice value.
  const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[16]);
}

test('helper threads (libuv pool, where hashes run) yield to the event loop thread', { skip: process.platform !== 'linux' }, async () => {
  pbkdf2Sync('warm', 'up', 1, 32, 'sha256');
  await promisify(pbkdf2)('start', 'the pool', 1, 32, 'sha256');
  const changed = lowerHelperThreadPriority(5);
  const helpers = readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid);
  assert.ok(changed >= 4, `at least libuv's four pool threads (changed ${changed})`);
  assert.equal(niceOf(process.pid), 0, 'the event loop thread keeps its priority');
  assert.ok(helpers.some((tid) => niceOf(tid) >= 5), 'pool threads run at a lower priority');
  assert.equal(lowerHelperThreadPriority(0), 0, 'zero changes nothing');
});

test('threads in the spared set keep their priority', { skip: process.platform !== 'linux' }, async () => {
  await promisify(pbkdf2)('start', 'the pool', 1, 32, 'sha256');
  const helpers = readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid);
  const spared = helpers[0]!;
  const before = niceOf(spared);
  lowerHelperThreadPriority(before + 3 > 19 ? 19 : 3, new Set([spared]));
  assert.equal(niceOf(spared), before, 'the spared thread is untouched');
});

test('`rampart serve` through bin/rampart.cjs: the hash pool is lowered, the threads Node and V8 started with are not', { skip: process.platform !== 'linux', timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-threads-'));
  const child = spawn(process.execPath, [resolve('bin/rampart.cjs'), 'serve', '--port', '0', '--data-dir', dataDir], {
    env: cliEnv({ LOG_LEVEL: 'info', METRICS_PORT: '0' }), stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    // Start-up hashes the dummy password (libuv's pool exists) and lowers the helpers before it listens.
    await new Promise<void>((ok, fail) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk;
        if (/listening on/.test(out)) ok();
      });
      child.once('exit', (code) => fail(new Error(`exited ${code}: ${out}`)));
    });
    const nice = readdirSync(`/proc/${child.pid}/task`).map((tid) => {
      const fields = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return { tid: Number(tid), nice: Number(fields[16]) };
    });
    const main = nice.find((thread) => thread.tid === child.pid)!;
    const others = nice.filter((thread) => thread.tid !== child.pid);
    assert.equal(main.nice, 0, 'the event loop keeps its priority');
    // V8's platform workers (its GC helpers) are among the threads alive before any JavaScript ran.
    assert.ok(others.filter((thread) => thread.nice === 0).length >= 4, JSON.stringify(nice));
    // libuv's four pool threads, where the hashes run, were started later.
    assert.ok(others.filter((thread) => thread.nice === 10).length >= 4, JSON.stringify(nice));
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    rmSync(dataDir, { recursive: true, force: true });
  }
});
