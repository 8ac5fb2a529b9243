import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encrypt } from '../crypto/aead.js';
import { eventKey, hkdfExpandBlock, openAuditField, sealAuditField } from './field-keys.js';

const v1 = randomBytes(32);
const v2 = randomBytes(32);
const keys = new Map([[1, v1], [2, v2]]);
const seal = (version: 1 | 2, eventId: string, field: string, value: string) =>
  sealAuditField({ version, key: keys.get(version)! }, eventKey(keys.get(version)!, eventId), eventId, field, value);

test('a field sealed under any version opens with the keyring that holds it, and names its version', () => {
  for (const version of [1, 2] as const) {
    const sealed = seal(version, 'evt_a', 'ip', '203.0.113.9');
    assert.match(sealed, new RegExp(`^k${version}\\.[A-Za-z0-9_-]+$`));
    assert.ok(!sealed.includes('203.0.113.9'));
    assert.equal(openAuditField(keys, sealed, 'evt_a', 'ip'), '203.0.113.9');
  }
  assert.equal(openAuditField(keys, null, 'evt_a', 'ip'), null, 'nothing stored reads as null');
});

test('each event has a key of its own: not the audit key, not another event\'s', () => {
  const a = eventKey(v1, 'evt_a');
  assert.equal(a.length, 32);
  assert.deepEqual(eventKey(v1, 'evt_a'), a, 'derived the same way every time');
  assert.notDeepEqual(eventKey(v1, 'evt_b'), a);
  assert.notDeepEqual(eventKey(v2, 'evt_a'), a);
  assert.notDeepEqual(a, v1);
  // Sealed under the event's key, so the audit key itself does not open it.
  const sealed = seal(1, 'evt_a', 'ip', '203.0.113.9');
  assert.equal(openAuditField(new Map([[1, v1]]), `k1.${encrypt(v1, 'x', 'audit:evt_a:ip')}`, 'evt_a', 'ip'), undefined);
  assert.equal(openAuditField(keys, sealed, 'evt_a', 'ip'), '203.0.113.9');
});

test('a field does not open when tampered, moved, relabelled or under a version the keyring lacks', () => {
  const sealed = seal(2, 'evt_a', 'user_agent', 'Mozilla/5.0');
  const body = sealed.slice(3);
  const flipped = `k2.${body.slice(0, 20)}${body[20] === 'A' ? 'B' : 'A'}${body.slice(21)}`;
  assert.equal(openAuditField(keys, flipped, 'evt_a', 'user_agent'), undefined, 'a flipped byte');
  assert.equal(openAuditField(keys, sealed, 'evt_b', 'user_agent'), undefined, 'copied onto another event');
  assert.equal(openAuditField(keys, sealed, 'evt_a', 'ip'), undefined, 'copied into another field');
  assert.equal(openAuditField(keys, `k1.${body}`, 'evt_a', 'user_agent'), undefined, 'relabelled as another version');
  assert.equal(openAuditField(new Map([[1, v1]]), sealed, 'evt_a', 'user_agent'), undefined, 'a version this keyring does not hold');
  assert.equal(openAuditField(keys, 'k2.', 'evt_a', 'user_agent'), undefined, 'no ciphertext');
  assert.equal(openAuditField(keys, 'k0.abc', 'evt_a', 'user_agent'), undefined, 'no version 0');
});

test('events written before per-event keys (the bare sealed value under version 1) still open', () => {
  const legacy = encrypt(v1, '198.51.100.4', 'audit:evt_old:ip');
  assert.equal(openAuditField(keys, legacy, 'evt_old', 'ip'), '198.51.100.4');
  assert.equal(openAuditField(new Map([[2, v2]]), legacy, 'evt_old', 'ip'), undefined, 'only version 1 opens them');
  assert.equal(openAuditField(keys, legacy, 'evt_other', 'ip'), undefined);
});

test('the event-key derivation is HKDF-Expand-SHA256: RFC 5869 test cases 1 and 3, first 32 bytes of the OKM', () => {
  // Test case 1: PRK from the RFC, info 0xf0..0xf9.
  const prk1 = Buffer.from('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5', 'hex');
  const okm1 = '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
  assert.equal(hkdfExpandBlock(prk1, Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex')).toString('hex'), okm1.slice(0, 64));
  // Test case 3: empty info.
  const prk3 = Buffer.from('19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04', 'hex');
  const okm3 = '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8';
  assert.equal(hkdfExpandBlock(prk3, Buffer.alloc(0)).toString('hex'), okm3.slice(0, 64));
});
