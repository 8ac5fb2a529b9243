import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decrypt, decryptString, encrypt } from './aead.js';
import { constantTimeEqual } from './constant-time.js';
import { StaticKeyProvider, wrappingKeyId } from './key-provider.js';
import { parseMasterKeyFile } from './master-key-file.js';

describe('AES-256-GCM envelope', () => {
  const key = randomBytes(32);

  test('round-trips any plaintext, with a fresh nonce every time', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 40 }), (plain, aad) => {
      const sealed = encrypt(key, plain, aad);
      assert.equal(decryptString(key, sealed, aad), plain);
      assert.notEqual(encrypt(key, plain, aad), sealed, 'nonce reuse');
    }));
  });

  test('a flipped bit anywhere, another AAD or another key fails closed (null, no throw)', () => {
    const sealed = encrypt(key, 'alice@example.com', 'usr_1:email');
    const raw = Buffer.from(sealed, 'base64url');
    for (let i = 0; i < raw.length; i++) {
      const tampered = Buffer.from(raw);
      tampered[i] = tampered[i]! ^ 0x01;
      assert.equal(decrypt(key, tampered.toString('base64url'), 'usr_1:email'), null, `byte ${i}`);
    }
    assert.equal(decrypt(key, sealed, 'usr_2:email'), null, 'a ciphertext moved to another row fails');
    assert.equal(decrypt(randomBytes(32), sealed, 'usr_1:email'), null);
    assert.equal(decrypt(key, 'not base64 at all!', 'x'), null);
    assert.equal(decrypt(key, '', 'x'), null);
  });

  test('refuses keys that are not 256 bits', () => {
    assert.throws(() => encrypt(randomBytes(16), 'x', 'y'), TypeError);
  });
});

describe('master key provider', () => {
  test('wraps under the current key and unwraps with older keys after a rotation', async () => {
    const oldKey = { id: 'old', key: randomBytes(32) };
    const before = new StaticKeyProvider([oldKey]);
    const dek = randomBytes(32);
    const wrapped = await before.wrap(dek, 'dek:usr_1');
    assert.equal(wrappingKeyId(wrapped), 'old');
    const after = new StaticKeyProvider([{ id: 'new', key: randomBytes(32) }, oldKey]);
    assert.deepEqual(await after.unwrap(wrapped, 'dek:usr_1'), dek);
    assert.equal(wrappingKeyId(await after.wrap(dek, 'dek:usr_1')), 'new');
    assert.equal(await after.unwrap(wrapped, 'dek:usr_2'), null, 'bound to its owner');
    assert.equal(await new StaticKeyProvider([{ id: 'other', key: randomBytes(32) }]).unwrap(wrapped, 'dek:usr_1'), null);
  });

  test('the key file format is strict', () => {
    const key = randomBytes(32).toString('base64url');
    assert.equal(parseMasterKeyFile(`# comment\nk1 ${key}\n`).length, 1);
    assert.throws(() => parseMasterKeyFile(''), /holds no key/);
    assert.throws(() => parseMasterKeyFile(`k1 ${key.slice(1)}`), /each line/);
    assert.throws(() => parseMasterKeyFile(`bad id ${key}`), /each line/);
  });
});

test('constantTimeEqual compares whole values of any length', () => {
  assert.equal(constantTimeEqual('abc', 'abc'), true);
  assert.equal(constantTimeEqual('abc', 'abd'), false);
  assert.equal(constantTimeEqual('abc', 'abcd'), false);
  assert.equal(constantTimeEqual('', ''), true);
});
