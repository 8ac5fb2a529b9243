import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with a random 96-bit nonce (NIST SP 800-38D §8.2.2) and
 * associated data that binds a ciphertext to its place (e.g. user id + field),
 * so that a ciphertext copied to another row or field fails to decrypt.
 *
 * Wire form (base64url): version(1) | nonce(12) | tag(16) | ciphertext.
 */
const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export function encrypt(key: Uint8Array, plaintext: Uint8Array | string, aad: string): string {
  assertKey(key);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), nonce, cipher.getAuthTag(), body]).toString('base64url');
}

/** Returns the plaintext, or null when the ciphertext is malformed or fails authentication. */
export function decrypt(key: Uint8Array, sealed: string, aad: string): Buffer | null {
  assertKey(key);
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < 1 + NONCE_BYTES + TAG_BYTES || raw[0] !== VERSION) return null;
  const nonce = raw.subarray(1, 1 + NONCE_BYTES);
  const tag = raw.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
  const body = raw.subarray(1 + NONCE_BYTES + TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}

export function decryptString(key: Uint8Array, sealed: string, aad: string): string | null {
  const plain = decrypt(key, sealed, aad);
  return plain === null ? null : plain.toString('utf8');
}

function assertKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new TypeError('AES-256-GCM needs a 32-byte key');
}

export const AEAD_KEY_BYTES = KEY_BYTES;
