import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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
