import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes, randomId } from '../../src/crypto/random.js';
import { formatApiToken } from '../../src/sdk/api-token-format.js';
import { uniqueEmail } from '../helpers/harness.js';
import { startTestServices } from '../helpers/services.js';

test('a token kept in the read cache is served from it under an older key version too (after a rotation, not one read per request)', async () => {
  const s = await startTestServices({ store: 'sqlite' });
  try {
    const meta = { ip: '127.0.0.1', userAgent: 'test' };
    const userId = randomId('usr');
    await s.services.pii.createProfile(userId, uniqueEmail('token-cache'), null);
    const now = s.clock.now();
    await s.services.users.insert({ id: userId, status: 'active', password_hash: '!', password_changed_at: now, email_verified: 0, mfa_enabled: 0, created_at: now, updated_at: now });
    const { token } = await s.services.apiTokens.create({ userId, name: 'cached', scopes: ['profile:read'], expiresInDays: 30, orgId: null }, meta);
    const repo = s.services.apiTokens.repository;
    let reads = 0;
    const findByHash = repo.findByHash.bind(repo);
    repo.findByHash = async (hash: string) => {
      reads++;
      return findByHash(hash);
    };
    const readsFor = async (times: number, presented = token) => {
      reads = 0;
      for (let i = 0; i < times; i++) await s.services.apiTokens.authenticate(presented, meta);
      return reads;
    };
    await readsFor(2);
    assert.equal(await readsFor(10), 0, 'kept before a rotation');
    await s.services.hmacKeys.rotate('api-token');
    await s.services.apiTokens.keys.reread();
    await readsFor(2);
    assert.equal(await readsFor(10), 0, 'kept after a rotation, under the older version');
    assert.ok((await readsFor(1, formatApiToken(randomBytes(32)))) <= 2, 'an unknown token: one read per version held');
  } finally {
    await s.close();
  }
});
