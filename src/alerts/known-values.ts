import { createHmac, hkdfSync } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { PiiService, Profile } from '../pii/pii-service.js';
import { addressSubject } from '../ratelimit/rate-limits.js';
import type { KnownValueRepository } from '../store/repositories/known-values.js';

export type KnownKind = 'ip' | 'device' | `token:${string}`;
/** Whether a value is new for the user, and whether it is the first of its kind. */
export type Seen = { isNew: boolean; firstOfKind: boolean };

/**
 * What a user has been seen with, kept as HMACs under a key derived (HKDF) from
 * the user's own data key: nothing readable, nothing comparable across users,
 * and gone with the user's key (crypto-shredding).
 */
export class KnownValues {
  /**
   * Derived keys by the opened data key they come from (the PII service hands out the
   * same Buffer while it keeps the key in memory): a derived key lives no longer than
   * its data key, and the HKDF runs once per opening instead of after every login.
   */
  readonly #derived = new WeakMap<Buffer, { userId: string; key: Buffer }>();

  constructor(private readonly repo: KnownValueRepository, private readonly pii: PiiService, private readonly clock: Clock) {}

  /**
   * Remembers values a user was seen with, in order, reading the user's profile
   * (their data key) once; null when the user has no profile any more (deleted).
   * Absent values (null, undefined) are skipped.
   */
  async observe<K extends KnownKind>(userId: string, values: Partial<Record<K, string | null>>): Promise<Partial<Record<K, Seen>> | null> {
    const present = (Object.entries(values) as Array<[K, string | null | undefined]>).filter((entry): entry is [K, string] => Boolean(entry[1]));
    if (present.length === 0) return {};
    const profile = await this.pii.getProfile(userId);
    if (!profile) return null;
    const key = this.#keyOf(profile);
    const seen: Partial<Record<K, Seen>> = {};
    for (const [kind, value] of present) {
      const hash = createHmac('sha256', key).update(`${kind}\n${normalize(kind, value)}`).digest('base64url');
      seen[kind] = await this.repo.remember(userId, kind, hash, this.clock.now());
    }
    return seen;
  }

  #keyOf(profile: Profile): Buffer {
    const known = this.#derived.get(profile.dataKey);
    if (known?.userId === profile.userId) return known.key;
    const key = Buffer.from(hkdfSync('sha256', profile.dataKey, Buffer.alloc(0), `rampart:known-values:${profile.userId}`, 32));
    this.#derived.set(profile.dataKey, { userId: profile.userId, key });
    return key;
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
