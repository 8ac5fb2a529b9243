import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { generateRecoveryCode, generateRecoveryCodes, normalizeRecoveryCode, RECOVERY_CODE_BYTES, RECOVERY_CODE_COUNT } from './recovery-codes.js';

test('ten distinct codes of 24 Crockford symbols (120 bits) in groups of four', () => {
  const codes = generateRecoveryCodes();
  assert.equal(codes.length, RECOVERY_CODE_COUNT);
  assert.equal(new Set(codes).size, 10);
  for (const code of codes) assert.match(code, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){5}$/);
  assert.ok(RECOVERY_CODE_BYTES * 8 >= 112, 'ASVS V6.5.2: ≥ 112 bits allows a keyed fast hash');
});

test('1,000 codes: no duplicates and every symbol of the alphabet in use, roughly uniformly (ASVS V6.5.3)', () => {
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const code = generateRecoveryCode();
    assert.ok(!seen.has(code));
    seen.add(code);
    for (const char of code.replaceAll('-', '')) counts.set(char, (counts.get(char) ?? 0) + 1);
  }
  assert.equal(counts.size, 32);
  // 24,000 symbols over 32 values: 750 expected each; a biased encoder would be far off.
  for (const [char, count] of counts) assert.ok(count > 600 && count < 900, `${char}: ${count}`);
});

test('typing variations normalize to the same code; anything else is refused', () => {
  const code = generateRecoveryCode();
  const canonical = normalizeRecoveryCode(code)!;
  assert.equal(canonical.length, 24);
  assert.equal(normalizeRecoveryCode(code.toUpperCase()), canonical);
  assert.equal(normalizeRecoveryCode(code.replaceAll('-', ' ')), canonical);
  assert.equal(normalizeRecoveryCode(code.replaceAll('-', '')), canonical);
  assert.equal(normalizeRecoveryCode('0000-1111-2222-3333-4444-5555'), normalizeRecoveryCode('oooo-iiii-2222-3333-4444-5555'));
  assert.equal(normalizeRecoveryCode(code.slice(0, -1)), null);
  assert.equal(normalizeRecoveryCode(`${code}a`), null);
  assert.equal(normalizeRecoveryCode('uuuu-uuuu-uuuu-uuuu-uuuu-uuuu'), null);
});

test('normalization never throws and yields only canonical codes', () => {
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (input) => {
    const out = normalizeRecoveryCode(input);
    assert.ok(out === null || /^[0-9a-hjkmnp-tv-z]{24}$/.test(out));
  }));
});
