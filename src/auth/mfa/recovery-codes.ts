import { randomBytes } from 'node:crypto';

/**
 * Recovery codes: ten single-use lookup secrets.
 *
 * Each code carries 120 bits from the CSPRNG (ASVS V6.5.3), written as 24
 * Crockford base32 characters in six groups of four. At 120 bits (≥ 112), ASVS
 * V6.5.2 allows a fast keyed hash instead of a password hash: the store keeps
 * HMAC-SHA256 under a keyring key, so a stolen database alone cannot even test a
 * guess, and a login needs one HMAC rather than ten argon2 runs (no CPU
 * amplification for whoever holds an mfaToken).
 */
export const RECOVERY_CODE_COUNT = 10;
export const RECOVERY_CODE_BYTES = 15;
const CODE_CHARS = 24;
/** Crockford base32: no I, L, O, U, so nothing reads as another character. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** One fresh code, e.g. `7k3m-q9x2-…` (24 symbols, 120 bits). */
export function generateRecoveryCode(): string {
  const symbols = encodeBase32(randomBytes(RECOVERY_CODE_BYTES));
  return symbols.match(/.{4}/g)!.join('-');
}

export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) codes.add(generateRecoveryCode());
  return [...codes];
}

/**
 * The canonical form of a typed code: case, spaces and hyphens ignored, and the
 * letters Crockford maps to digits (i/l → 1, o → 0). null when it cannot be a code.
 */
export function normalizeRecoveryCode(input: string): string | null {
  const compact = input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
  if (compact.length !== CODE_CHARS) return null;
  for (const char of compact) if (!ALPHABET.includes(char)) return null;
  return compact;
}

/** Base32 of whole 5-byte groups (15 bytes → 24 symbols), most significant bits first. */
function encodeBase32(bytes: Uint8Array): string {
  if (bytes.length % 5 !== 0) throw new TypeError('base32 input must be a multiple of 5 bytes');
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}
