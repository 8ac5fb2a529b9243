import { createHash, createHmac } from 'node:crypto';

/** SHA-256 of a high-entropy secret (session id, reset token), hex. Only for secrets of ≥ 128 random bits. */
export function sha256Hex(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('hex');
}

/** HMAC-SHA256 under `key`, base64url. */
export function hmacSha256(key: Uint8Array, value: string | Uint8Array): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}
