import { createHmac, hkdfSync } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { PiiService } from '../pii/pii-service.js';
import { addressSubject } from '../ratelimit/rate-limits.js';
import type { KnownValueRepository } from '../store/repositories/known-values.js';

export type KnownKind = 'ip' | 'device' | `token:${string}`;

/**
 * What a user has been seen with, kept as HMACs under a key derived (HKDF) from
 * the user's own data key: nothing readable, nothing comparable across users,
 * and gone with the user's key (crypto-shredding).
 */
export class KnownValues {
  constructor(private readonly repo: KnownValueRepository, private readonly pii: PiiService, private readonly clock: Clock) {}

  /** null when the user has no profile any more (deleted). */
  async observe(userId: string, kind: KnownKind, value: string): Promise<{ isNew: boolean; firstOfKind: boolean } | null> {
    const profile = await this.pii.getProfile(userId);
    if (!profile) return null;
    const key = Buffer.from(hkdfSync('sha256', profile.dataKey, Buffer.alloc(0), `rampart:known-values:${userId}`, 32));
    const hash = createHmac('sha256', key).update(`${kind}\n${normalize(kind, value)}`).digest('base64url');
    return this.repo.remember(userId, kind, hash, this.clock.now());
  }
}

function normalize(kind: KnownKind, value: string): string {
  if (kind === 'device') return deviceOf(value);
  // Addresses: an IPv6 client rotates within its /64 (privacy addresses); the /64 is "the address".
  return addressSubject(value);
}

/**
 * A device as far as a user agent tells: the string without its version numbers,
 * so a browser update is not a "new device" while another browser or OS is.
 */
export function deviceOf(userAgent: string): string {
  return userAgent.replace(/\d+([._]\d+)*/g, '#').replace(/\s+/g, ' ').trim().toLowerCase().slice(0, 256);
}
