import assert from 'node:assert/strict';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ManualClock } from '../clock.js';
import type { PiiService, Profile } from '../pii/pii-service.js';
import type { KnownValueRepository } from '../store/repositories/known-values.js';
import { KnownValues } from './known-values.js';

/** The value hashes KnownValues hands to its repository, and a PII service serving `profiles`. */
function knownValues(profiles: Map<string, Profile>) {
  const remembered: Array<{ userId: string; kind: string; hash: string }> = [];
  const repo = { remember: async (userId: string, kind: string, hash: string) => (remembered.push({ userId, kind, hash }), { isNew: false, firstOfKind: false }) };
  const pii = { getProfile: async (userId: string) => profiles.get(userId) ?? null };
  return { known: new KnownValues(repo as unknown as KnownValueRepository, pii as unknown as PiiService, new ManualClock()), remembered };
}

const profile = (userId: string, dataKey = randomBytes(32)): Profile => ({ userId, email: `${userId}@example.com`, name: null, dataKey });

test('value hashes are HMACs under a key HKDF-derived from the user\'s data key: per user, and the same on every sighting', async () => {
  const alice = profile('usr_alice');
  const bob = profile('usr_bob');
  const { known, remembered } = knownValues(new Map([[alice.userId, alice], [bob.userId, bob]]));
  for (let i = 0; i < 2; i++) await known.observe(alice.userId, { ip: '203.0.113.7' });
  await known.observe(bob.userId, { ip: '203.0.113.7' });
  const key = Buffer.from(hkdfSync('sha256', alice.dataKey, Buffer.alloc(0), `rampart:known-values:${alice.userId}`, 32));
  const expected = createHmac('sha256', key).update('ip\nv4:203.0.113.7').digest('base64url');
  assert.deepEqual(remembered.map((r) => r.hash), [expected, expected, remembered[2]!.hash]);
  assert.notEqual(remembered[2]!.hash, expected, 'not comparable across users');
});

test('the derived key follows the data key: another data key for the same user gives other hashes', async () => {
  const profiles = new Map([['usr_carol', profile('usr_carol')]]);
  const { known, remembered } = knownValues(profiles);
  await known.observe('usr_carol', { device: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0' });
  profiles.set('usr_carol', profile('usr_carol'));
  await known.observe('usr_carol', { device: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0' });
  assert.notEqual(remembered[0]!.hash, remembered[1]!.hash);
});
