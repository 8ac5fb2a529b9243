import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hash as argon2Hash } from '@node-rs/argon2';
import { RampartError } from '../../errors.js';
import { PasswordHasher } from './hasher.js';

const OWASP = { memoryKiB: 19456, iterations: 2, parallelism: 1 };

describe('PasswordHasher', () => {
  test('produces argon2id PHC strings with the configured parameters and verifies them', async () => {
    const hasher = new PasswordHasher({ parameters: OWASP, concurrency: 2, queueLimit: 4 });
    const stored = await hasher.hash('correct horse battery staple');
    assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.deepEqual(await hasher.verify(stored, 'correct horse battery staple'), { valid: true, needsRehash: false });
    assert.deepEqual(await hasher.verify(stored, 'correct horse battery stapl'), { valid: false, needsRehash: false });
    assert.notEqual(await hasher.hash('correct horse battery staple'), stored, 'salted');
  });

  test('normalizes Unicode (NFKC) so the same password typed on another device verifies', async () => {
    const hasher = new PasswordHasher({ parameters: OWASP, concurrency: 1, queueLimit: 4 });
    const composed = 'caf\u00e9 au lait tous les matins';
    const decomposed = 'cafe\u0301 au lait tous les matins';
    assert.equal((await hasher.verify(await hasher.hash(composed), decomposed)).valid, true);
  });

  test('flags weaker stored parameters for rehash, and refuses absurd ones without computing them', async () => {
    const hasher = new PasswordHasher({ parameters: OWASP, concurrency: 1, queueLimit: 4 });
    const weak = await argon2Hash('pw', { memoryCost: 8192, timeCost: 1, parallelism: 1, algorithm: 2 });
    assert.deepEqual(await hasher.verify(weak, 'pw'), { valid: true, needsRehash: true });
    const argon2i = await argon2Hash('pw', { memoryCost: 19456, timeCost: 2, parallelism: 1, algorithm: 1 });
    assert.deepEqual(await hasher.verify(argon2i, 'pw'), { valid: true, needsRehash: true });
    const huge = '$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY';
    assert.deepEqual(await hasher.verify(huge, 'pw'), { valid: false, needsRehash: false });
    assert.deepEqual(await hasher.verify('plaintext-password', 'plaintext-password'), { valid: false, needsRehash: false });
    assert.deepEqual(await hasher.verify('$argon2id$garbage', 'x'), { valid: false, needsRehash: false });
  });

  test('admission control: at most `concurrency` in flight, a bounded queue, then server_busy with Retry-After', async () => {
    const hasher = new PasswordHasher({ parameters: OWASP, concurrency: 1, queueLimit: 2 });
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => hasher.hash(`password ${n}`)));
    const load = hasher.load();
    assert.deepEqual(load, { running: 0, waiting: 0 }, 'every slot released');
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(fulfilled.length, 3, 'one running + two queued');
    assert.equal(rejected.length, 2);
    for (const { reason } of rejected) {
      assert.ok(reason instanceof RampartError);
      assert.equal(reason.code, 'server_busy');
      assert.equal(reason.status, 503);
      assert.equal(reason.headers?.['Retry-After'], '1');
    }
  });

  test('the dummy verification does real work and always fails', async () => {
    const hasher = new PasswordHasher({ parameters: OWASP, concurrency: 1, queueLimit: 2 });
    assert.equal(await hasher.verifyDummy('anything'), false);
  });
});
