import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { hmacSha256 } from './hash.js';
import { findUnderAnyVersion, KeyVersions, storedHmac, storedHmacVersion } from './hmac-key-versions.js';
import type { Keyring } from './keyring.js';

/** A keyring whose versions the test adds and removes, counting how often they are listed. */
function fakeKeyring() {
  const keys = new Map<number, Buffer>([[1, randomBytes(32)]]);
  const state = { reads: 0, failing: false };
  const keyring = {
    current: async () => {
      if (state.failing) throw new Error('store down');
      const version = Math.max(...keys.keys());
      return { version, key: keys.get(version)! };
    },
    versionsOf: async () => {
      state.reads++;
      return [...keys.keys()].sort((a, b) => b - a).map((version) => ({ version, createdAt: version }));
    },
    keyAt: async (_purpose: string, version: number) => keys.get(version) ?? null,
  } as unknown as Keyring;
  return { keyring, keys, state, rotate: () => keys.set(Math.max(...keys.keys()) + 1, randomBytes(32)) };
}

test('stored verifiers: version 1 is the bare HMAC (as before keys rotated), later versions carry k<version>.', () => {
  const key = randomBytes(32);
  assert.equal(storedHmac({ version: 1, key }, 'value'), hmacSha256(key, 'value'));
  assert.equal(storedHmac({ version: 3, key }, 'value'), `k3.${hmacSha256(key, 'value')}`);
  assert.equal(storedHmacVersion(storedHmac({ version: 1, key }, 'value')), 1);
  assert.equal(storedHmacVersion(storedHmac({ version: 12, key }, 'value')), 12);
});

test('the versions held are re-read once they are older than the refresh interval, not on every call', async () => {
  const { keyring, state, rotate } = fakeKeyring();
  const versions = new KeyVersions(keyring, 'test', { refreshMs: 150, missRefreshMs: 50 });
  assert.equal((await versions.current()).version, 1);
  const reads = state.reads;
  rotate();
  for (let i = 0; i < 20; i++) assert.equal((await versions.current()).version, 1, 'held within the interval');
  assert.equal(state.reads, reads, 'no read within the interval');
  await sleep(200);
  assert.equal((await versions.current()).version, 2, 'the rotation is seen once the interval has passed');
  assert.deepEqual((await versions.all()).map((held) => held.version), [2, 1]);
});

test('currentHeld never waits: a stale set is re-read in the background and taken once read; a failed read is retried later', async () => {
  const { keyring, state, rotate } = fakeKeyring();
  const versions = new KeyVersions(keyring, 'test', { refreshMs: 100, missRefreshMs: 50 });
  assert.equal(versions.currentHeld(), null, 'nothing before the first read');
  await versions.all();
  rotate();
  await sleep(130);
  state.failing = true;
  assert.equal(versions.currentHeld()!.version, 1, 'the stale version answers while the read runs');
  await sleep(10);
  assert.equal(versions.currentHeld()!.version, 1, 'a failed read keeps the versions held');
  state.failing = false;
  await sleep(70);
  assert.equal(versions.currentHeld()!.version, 1, 'the retry starts on this call…');
  await sleep(10);
  assert.equal(versions.currentHeld()!.version, 2, '…and its result is taken');
});

test('a miss re-reads the versions at most once per interval, and finds a value stored under a version new to this process', async () => {
  const { keyring, keys, state, rotate } = fakeKeyring();
  const versions = new KeyVersions(keyring, 'test', { refreshMs: 60_000, missRefreshMs: 300 });
  await versions.all();
  rotate(); // another instance rotated and stored a value under version 2
  const stored = new Set([storedHmac({ version: 2, key: keys.get(2)! }, 'token')]);
  const lookup = async (candidate: string) => (stored.has(candidate) ? candidate : undefined);
  const readsBefore = state.reads;
  const early = await findUnderAnyVersion(versions, 'token', lookup);
  assert.equal(early.found, undefined, 'within the miss interval of the last read, nothing new is read');
  assert.equal(state.reads, readsBefore);
  await sleep(350);
  const found = await findUnderAnyVersion(versions, 'token', lookup);
  assert.equal(found.found, found.stored);
  assert.match(found.stored, /^k2\./);
  assert.equal(state.reads, readsBefore + 1, 'one read');
  // A flood of misses (made-up values) reads at most once per interval.
  for (let i = 0; i < 50; i++) assert.equal((await findUnderAnyVersion(versions, `made-up-${i}`, lookup)).found, undefined);
  assert.equal(state.reads, readsBefore + 1, 'no further read within the interval');
  // Values under the older version are still found while it is held.
  stored.add(storedHmac({ version: 1, key: keys.get(1)! }, 'old'));
  assert.equal((await findUnderAnyVersion(versions, 'old', lookup)).found, storedHmac({ version: 1, key: keys.get(1)! }, 'old'));
});
