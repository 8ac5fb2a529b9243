import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Secret } from 'otpauth';
import { generateTOTP, generateTOTPSecret, matchTOTPStep, totpStep, totpURI } from './totp.js';

interface Vectors {
  seeds: Record<string, string>;
  digits: number;
  vectors: Array<{ time: number; T: string; totp: string; mode: string }>;
}

const vectors = JSON.parse(readFileSync(new URL('../../../test/vectors/rfc6238-appendix-b.json', import.meta.url), 'utf8')) as Vectors;

test('RFC 6238 Appendix B: every vector generates, verifies and maps to its time step', () => {
  assert.equal(vectors.vectors.length, 18);
  for (const vector of vectors.vectors) {
    const secret = Secret.fromLatin1(vectors.seeds[vector.mode]!).base32;
    const at = vector.time * 1000;
    const options = { algorithm: vector.mode, digits: vectors.digits };
    assert.equal(totpStep(at), Number.parseInt(vector.T, 16), `T at ${vector.time}`);
    assert.equal(generateTOTP(secret, at, options), vector.totp, `${vector.mode} at ${vector.time}`);
    assert.equal(matchTOTPStep(secret, vector.totp, at, options), Number.parseInt(vector.T, 16));
  }
});

test('codes are accepted for the current step and one step either side, never two', () => {
  const secret = generateTOTPSecret();
  const now = Date.UTC(2026, 5, 1, 12, 0, 15);
  const step = totpStep(now);
  for (const offset of [-1, 0, 1]) {
    const code = generateTOTP(secret, now + offset * 30_000);
    assert.equal(matchTOTPStep(secret, code, now), step + offset, `offset ${offset}`);
  }
  for (const offset of [-2, 2]) {
    const code = generateTOTP(secret, now + offset * 30_000);
    // A code from two steps away could collide with a nearby one by chance (1 in 10^6 per step).
    const match = matchTOTPStep(secret, code, now);
    assert.ok(match === null || Math.abs(match - step) <= 1, `offset ${offset} is refused`);
    assert.notEqual(match, step + offset);
  }
});

test('malformed codes never match', () => {
  const secret = generateTOTPSecret();
  const now = Date.now();
  const code = generateTOTP(secret, now);
  assert.equal(matchTOTPStep(secret, `${code}0`, now), null);
  assert.equal(matchTOTPStep(secret, code.slice(1), now), null);
  assert.equal(matchTOTPStep(secret, ' '.repeat(6), now), null);
  assert.equal(matchTOTPStep(secret, '１２３４５６', now), null, 'full-width digits');
});

test('secrets are 160 random bits; the URI names SHA1, 6 digits, 30 s', () => {
  const a = generateTOTPSecret();
  const b = generateTOTPSecret();
  assert.notEqual(a, b);
  assert.equal(Secret.fromBase32(a).bytes.length, 20);
  const uri = new URL(totpURI(a, 'Rampart', 'alice@example.com'));
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.host, 'totp');
  assert.equal(uri.searchParams.get('secret'), a);
  assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
  assert.equal(uri.searchParams.get('digits'), '6');
  assert.equal(uri.searchParams.get('period'), '30');
  assert.equal(uri.searchParams.get('issuer'), 'Rampart');
});
