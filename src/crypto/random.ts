import { randomBytes } from 'node:crypto';

/** `byteLength` random bytes from the CSPRNG, base64url encoded (no padding). */
export function randomToken(byteLength = 32): string {
  return randomBytes(byteLength).toString('base64url');
}

/** An opaque identifier: `prefix_` + 128 random bits, base64url. */
export function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

export { randomBytes };
