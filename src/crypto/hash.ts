import * as nodeCrypto from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';

/** Node's one-shot digest (20.12+), a third of the cost of a Hash object; absent on older 20.x. */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string }).hash;

/** SHA-256 of a high-entropy secret (session id, reset token), hex. Only for secrets of ≥ 128 random bits. */
export function sha256Hex(value: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', value, 'hex') : createHash('sha256').update(value).digest('hex');
}

/** HMAC-SHA256 under `key`, base64url. */
export function hmacSha256(key: Uint8Array, value: string | Uint8Array): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}
