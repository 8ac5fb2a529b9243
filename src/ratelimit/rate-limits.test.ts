import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { Keyring } from '../crypto/keyring.js';
import { RateLimits } from './rate-limits.js';

async function limits(perMinute = 3): Promise<RateLimits> {
  const key = randomBytes(32);
  const keyring = {
    current: async () => ({ version: 1, key }),
    versionsOf: async () => [{ version: 1, createdAt: 0 }],
    keyAt: async () => key,
  } as unknown as Keyring;
  const rateLimits = new RateLimits({ perMinute: { anon: perMinute, auth: perMinute, account: perMinute, badauth: perMinute }, redis: null, keyPrefix: 'test:', keyring });
  await rateLimits.init();
  return rateLimits;
}

test('an account subject (an email\'s blind index) is never kept in the key memo, which outlives the request', async () => {
  const rateLimits = await limits();
  await rateLimits.consume('anon', 'v4:203.0.113.7');
  assert.equal(rateLimits.memoizedKeys, 1, 'addresses are memoized (the same callers come back)');
  await rateLimits.consume('account', 'email:c2VjcmV0LWJsaW5kLWluZGV4');
  await rateLimits.consume('account', 'user:usr_1');
  await rateLimits.peek('account', 'email:c2VjcmV0LWJsaW5kLWluZGV4');
  assert.equal(rateLimits.memoizedKeys, 1, 'nothing derived from an email stays behind');
});

test('the account tier still counts one key per subject', async () => {
  const rateLimits = await limits(3);
  for (let i = 0; i < 3; i++) assert.equal((await rateLimits.consume('account', 'email:aaaa')).allowed, true);
  assert.equal((await rateLimits.consume('account', 'email:aaaa')).allowed, false, 'the fourth within the minute is refused');
  assert.equal((await rateLimits.consume('account', 'email:bbbb')).allowed, true, 'another account has its own budget');
  assert.equal((await rateLimits.peek('account', 'email:aaaa')).remaining, 0);
});

test('a rotated counter key reaches a running process within its refresh interval, without a wait on any request: counters start afresh', async () => {
  const keys = new Map<number, Buffer>([[1, randomBytes(32)]]);
  const newest = () => Math.max(...keys.keys());
  const keyring = {
    current: async () => ({ version: newest(), key: keys.get(newest())! }),
    versionsOf: async () => [...keys.keys()].sort((a, b) => b - a).map((version) => ({ version, createdAt: 0 })),
    keyAt: async (_purpose: string, version: number) => keys.get(version) ?? null,
  } as unknown as Keyring;
  const rateLimits = new RateLimits({ perMinute: { anon: 2, auth: 2, account: 2, badauth: 2 }, redis: null, keyPrefix: 'rotate:', keyring, keyRefreshMs: 100 });
  await rateLimits.init();
  const subject = 'v4:203.0.113.9';
  assert.equal((await rateLimits.consume('anon', subject)).allowed, true);
  assert.equal((await rateLimits.consume('anon', subject)).allowed, true);
  assert.equal((await rateLimits.consume('anon', subject)).allowed, false, 'spent under version 1');
  keys.set(2, randomBytes(32));
  assert.equal((await rateLimits.consume('anon', subject)).allowed, false, 'within the interval the held version counts on');
  await sleep(150);
  assert.equal((await rateLimits.consume('anon', subject)).allowed, false, 'the stale version answers while the new one is read in the background');
  await sleep(10);
  assert.equal((await rateLimits.consume('anon', subject)).allowed, true, 'under version 2 the counter starts afresh');
});
