import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { commonPasswordCount, isCommonPassword } from './common-passwords.js';
import { checkPassword, PASSWORD_MAX_LENGTH, type PasswordPolicy } from './policy.js';

const policy: PasswordPolicy = { minLength: 12, minStrength: 3, historyCount: 5, maxAgeDays: null, blockCommon: true };
const lenient: PasswordPolicy = { minLength: 8, minStrength: 0, historyCount: 0, maxAgeDays: null, blockCommon: true };
const alice = { email: 'alice.martin@example.com', name: 'Alice Martin', extraWords: ['Rampart', 'Globex'] };

describe('password policy (checkPassword)', () => {
  test('a long passphrase without classes passes (ASVS V6.2.5: no composition rules)', () => {
    assert.deepEqual(checkPassword('correct horse battery staple', policy, alice), []);
    assert.deepEqual(checkPassword('violet tractor harbor quill', policy, alice), []);
    assert.deepEqual(checkPassword('жёлтый трактор у гавани', policy, alice), [], 'Unicode is welcome');
  });

  test('too_short counts characters, not bytes; too_long past 256', () => {
    assert.ok(checkPassword('tQ9#vLp2', policy, alice).includes('too_short'));
    assert.ok(!checkPassword('ébène-quiñón-ölçü', policy, alice).includes('too_short'));
    assert.deepEqual(checkPassword('x'.repeat(PASSWORD_MAX_LENGTH + 1), policy, alice), ['too_long']);
  });

  test('too_weak below the zxcvbn score', () => {
    assert.ok(checkPassword('aaaaaaaaaaaaaaaa', policy, alice).includes('too_weak'));
  });

  test('common: the top-3000 list entries that meet the length policy are refused (ASVS V6.2.4)', () => {
    for (const password of ['password', '12345678', 'iloveyou', 'qwerty123456', 'PASSWORD1', 'sonyericsson', 'leavemealone']) {
      assert.ok(checkPassword(password, lenient, { email: null, name: null }).includes('common'), password);
    }
    assert.ok(isCommonPassword('1q2w3e4r5t6y'));
    assert.ok(!isCommonPassword('violet tractor harbor quill'));
    assert.ok(commonPasswordCount() >= 9_000);
  });

  test('blockCommon false lets a list entry through the list check (score rules still apply)', () => {
    const reasons = checkPassword('qwerty123456', { ...lenient, blockCommon: false }, { email: null, name: null });
    assert.ok(!reasons.includes('common'));
  });

  test('contains_user_info: email, its parts, the name, product and org names (ASVS V6.2.11)', () => {
    for (const password of ['alice.martin-harbor-quill', 'Martin!harbor-quill-77', 'Rampart2025passw', 'globex-harbor-quill-violet']) {
      assert.ok(checkPassword(password, policy, alice).includes('contains_user_info'), password);
    }
  });

  test('property: only known reasons, never a throw, too_long exactly past the maximum', () => {
    const known = new Set(['too_short', 'too_long', 'too_weak', 'common', 'contains_user_info', 'breached']);
    fc.assert(fc.property(fc.string({ maxLength: 300, unit: 'grapheme' }), (password) => {
      const reasons = checkPassword(password, policy, alice);
      assert.ok(reasons.every((reason) => known.has(reason)));
      assert.equal(reasons.includes('too_long'), [...password].length > PASSWORD_MAX_LENGTH);
      assert.equal(reasons.includes('too_short'), [...password].length < policy.minLength);
    }), { numRuns: 200 });
  });
});
