import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { API_TOKEN_LENGTH, crc32, formatApiToken, hasValidApiTokenChecksum, toBase62 } from './api-token-format.js';

describe('API token format', () => {
  test('CRC-32 matches the check value of the IEEE polynomial (and zlib when present)', () => {
    assert.equal(crc32('123456789'), 0xcbf43926);
    assert.equal(crc32(''), 0);
    const zlibCrc = (zlib as unknown as { crc32?: (data: string) => number }).crc32;
    if (zlibCrc) {
      fc.assert(fc.property(fc.string({ maxLength: 80 }), (text) => crc32(text) === zlibCrc(text)));
    }
  });

  test('rpat_ + 43 base62 characters (256 bits) + a 6-character checksum', () => {
    const token = formatApiToken(randomBytes(32));
    assert.match(token, /^rpat_[0-9A-Za-z]{49}$/);
    assert.equal(token.length, API_TOKEN_LENGTH);
    assert.ok(hasValidApiTokenChecksum(token));
    // The largest 256-bit value still fits in 43 characters.
    assert.equal(toBase62(2n ** 256n - 1n, 43).length, 43);
    assert.equal(formatApiToken(Buffer.alloc(32)).slice(5, 48), '0'.repeat(43));
  });

  test('any single-character change, truncation or extension is caught by the checksum', () => {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 5, max: API_TOKEN_LENGTH - 1 }), fc.integer({ min: 1, max: 61 }), (bytes, index, shift) => {
        const token = formatApiToken(bytes);
        const replaced = alphabet[(alphabet.indexOf(token[index]!) + shift) % 62]!;
        const typo = token.slice(0, index) + replaced + token.slice(index + 1);
        return !hasValidApiTokenChecksum(typo) && !hasValidApiTokenChecksum(token.slice(0, -1)) && !hasValidApiTokenChecksum(`${token}0`);
      }),
    );
  });

  test('arbitrary strings never pass and never throw', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (text) => hasValidApiTokenChecksum(`rpat_${text}`) === false || text.length === 49));
  });
});
