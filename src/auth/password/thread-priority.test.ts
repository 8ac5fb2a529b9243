import assert from 'node:assert/strict';
import { pbkdf2Sync, pbkdf2 } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { test } from 'node:test';
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
