import { createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { decryptString, encrypt } from '../crypto/aead.js';
import { type Keyring, keyVersionOf, withKeyVersion } from '../crypto/keyring.js';

export const AUDIT_KEY_PURPOSE = 'audit';

/** How long an instance seals with the version it last read before reading the keyring again. */
export const AUDIT_KEY_REFRESH_MS = 60_000;

/** The versions of the audit key, by number, for opening fields. */
export type AuditOpeningKeys = ReadonlyMap<number, Buffer>;

/**
 * The keys of the audit log's encrypted fields (an event's client address and user
 * agent). The `audit` purpose key is versioned in the keyring: `rampart keys
 * rotate-audit` adds a version, every instance seals with it within
 * AUDIT_KEY_REFRESH_MS, and every version stays to open what it sealed.
 *
 * Each event's fields are sealed under a key of their own, derived with
 * HKDF-SHA256 from the audit key and the event's random id: a purpose key that
 * encrypted with random 96-bit nonces directly would be bounded at 2^32
 * encryptions (NIST SP 800-38D §8.3), and nothing would count them; a derived key
 * seals two fields. Stored form: `k<version>.<AES-256-GCM sealed value>`.
 * Events written before this form hold the bare sealed value, under version 1
 * itself; they still open.
 */
export class AuditFieldKeys {
  #current: { version: number; key: Buffer; readAt: number } | null = null;

  constructor(private readonly keyring: Keyring, private readonly now: () => number) {}

  /** Loads (creating on first start) the current version, so that appends never wait for it outside their transaction. */
  async init(): Promise<void> {
    await this.#refresh();
  }

  /**
   * The version that seals new events, read again (in `executor`, the append's own
   * transaction) once AUDIT_KEY_REFRESH_MS have passed.
   */
  async sealing(executor: Kysely<any> | Transaction<any>): Promise<{ version: number; key: Buffer }> {
    const current = this.#current;
    const now = this.now();
    if (current && now - current.readAt < AUDIT_KEY_REFRESH_MS && now >= current.readAt) return current;
    return this.#refresh(executor);
  }

  /** The key versions that open `rows`' fields (each read from the keyring once per process, `Keyring.keyAt`). */
  async openingFor(rows: ReadonlyArray<{ ip_enc: string | null; user_agent_enc: string | null }>): Promise<AuditOpeningKeys> {
    const keys = new Map<number, Buffer>();
    for (const row of rows) {
      for (const sealed of [row.ip_enc, row.user_agent_enc]) {
        if (sealed === null) continue;
        const { version } = keyVersionOf(sealed);
        if (keys.has(version)) continue;
        const key = await this.keyring.keyAt(AUDIT_KEY_PURPOSE, version);
        // A version the keyring lacks stays out: the field reads as damaged.
        if (key) keys.set(version, key);
      }
    }
    return keys;
  }

  async #refresh(executor?: Kysely<any> | Transaction<any>): Promise<{ version: number; key: Buffer }> {
    const latest = await this.keyring.current(AUDIT_KEY_PURPOSE, executor);
    this.#current = { ...latest, readAt: this.now() };
    return this.#current;
  }
}

/**
 * The key that seals one event's fields: HKDF-Expand-SHA256 (RFC 5869 §2.3) of the
 * audit key with info `rampart:audit-event:<eventId>`, one 32-byte block
 * (T(1) = HMAC(PRK, info || 0x01)). The audit key is 32 random bytes, a
 * pseudorandom key already, so HKDF-Extract is skipped (RFC 5869 §3.3); Node's
 * `hkdfSync` always extracts first and cost 14 µs per event against 3 µs here
 * (checked against RFC 5869's test vector in field-keys.test.ts).
 */
export function eventKey(auditKey: Buffer, eventId: string): Buffer {
  return hkdfExpandBlock(auditKey, `rampart:audit-event:${eventId}`);
}

const FIRST_BLOCK = Buffer.from([1]);

/** HKDF-Expand with SHA-256 for L = 32: the first output block. */
export function hkdfExpandBlock(prk: Buffer, info: string | Buffer): Buffer {
  return createHmac('sha256', prk).update(info).update(FIRST_BLOCK).digest();
}

/** Seals one field of an event under the event's derived key. */
export function sealAuditField(sealing: { version: number; key: Buffer }, eventKeyBytes: Buffer, eventId: string, field: string, value: string): string {
  return withKeyVersion(sealing.version, encrypt(eventKeyBytes, value, `audit:${eventId}:${field}`));
}

/**
 * Opens one stored field: its plaintext, null when nothing was stored, undefined when
 * it does not open (tampered, moved to another event or field, or sealed under a
 * version this keyring does not hold).
 */
export function openAuditField(keys: AuditOpeningKeys, sealed: string | null, eventId: string, field: string): string | null | undefined {
  if (sealed === null) return null;
  const aad = `audit:${eventId}:${field}`;
  const stored = keyVersionOf(sealed);
  const key = keys.get(stored.version);
  if (!key) return undefined;
  // Written before per-event keys: sealed directly under version 1.
  return decryptString(stored.bare ? key : eventKey(key, eventId), stored.sealed, aad) ?? undefined;
}
