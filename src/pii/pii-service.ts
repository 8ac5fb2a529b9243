import { randomBytes } from 'node:crypto';
import { decryptString, encrypt } from '../crypto/aead.js';
import { hmacSha256 } from '../crypto/hash.js';
import type { KeyProvider } from '../crypto/key-provider.js';
import type { Keyring } from '../crypto/keyring.js';
import { OpenedCache } from '../crypto/opened-cache.js';
import type { Clock } from '../clock.js';
import { altersRows, ReadCache } from '../store/read-cache.js';
import { PiiUserRepository } from '../store/repositories/pii-users.js';
import type { Store } from '../store/db.js';
import type { PiiDB } from '../store/schema.js';

/** A user's decrypted personal data, plus the data key for other per-user fields. */
export interface Profile {
  userId: string;
  email: string;
  name: string | null;
  /** The unwrapped per-user data key; never leaves the process. */
  dataKey: Buffer;
}

/**
 * Personal data lives only here, in its own store: email and name encrypted with
 * AES-256-GCM under a per-user data key, which the master key wraps. Lookups by
 * email use a keyed blind index (HMAC of the normalized address), so the store
 * holds no searchable plaintext. Deleting the row destroys the data key
 * (crypto-shredding): copies in backups can no longer be decrypted.
 */
/** How long an opened data key or field may stay in memory, and how many at most. */
const OPENED_TTL_MS = 60_000;
const OPENED_MAX_ENTRIES = 20_000;

export class PiiService {
  readonly #repo: PiiUserRepository;
  readonly #dataKeys: OpenedCache<Buffer>;
  readonly #fields: OpenedCache<string>;
  /** Profiles opened recently, by user id: emptied by any change to a stored profile, and kept as long as opened fields. */
  readonly #profiles: ReadCache<string, Profile | null>;

  constructor(
    store: Store<PiiDB>,
    private readonly keys: KeyProvider,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
  ) {
    this.#repo = new PiiUserRepository(store.db);
    const now = () => this.clock.now();
    this.#dataKeys = new OpenedCache(OPENED_MAX_ENTRIES, OPENED_TTL_MS, now);
    this.#fields = new OpenedCache(OPENED_MAX_ENTRIES * 4, OPENED_TTL_MS, now);
    this.#profiles = new ReadCache({
      feed: store.changes,
      dependsOn: (change) => altersRows(change, 'pii_users'),
      maxEntries: OPENED_MAX_ENTRIES,
      maxAgeMs: OPENED_TTL_MS,
      now,
    });
  }

  /** The blind index of an email address. */
  async emailIndex(email: string): Promise<string> {
    return hmacSha256(await this.keyring.key('blind-index'), `email:${normalizeEmail(email)}`);
  }

  async findUserIdByEmail(email: string): Promise<string | null> {
    return (await this.findByEmail(email))?.userId ?? null;
  }

  async findByEmail(email: string): Promise<{ userId: string; createdAt: number } | null> {
    const row = await this.#repo.findByEmailIndex(await this.emailIndex(email));
    return row ? { userId: row.user_id, createdAt: row.created_at } : null;
  }

  /** Stores a new profile; throws the store's unique-violation error when the email is taken. */
  async createProfile(userId: string, email: string, name: string | null): Promise<Profile> {
    const dataKey = randomBytes(32);
    const now = this.clock.now();
    const trimmedEmail = email.trim();
    await this.#repo.insert({
      user_id: userId,
      email_index: await this.emailIndex(email),
      email_enc: encrypt(dataKey, trimmedEmail, `${userId}:email`),
      name_enc: name === null ? null : encrypt(dataKey, name, `${userId}:name`),
      wrapped_dek: await this.keys.wrap(dataKey, `dek:${userId}`),
      created_at: now,
      updated_at: now,
    });
    return { userId, email: trimmedEmail, name, dataKey };
  }

  /** The user's profile, decrypted; shared between requests, so callers must not change it. */
  async getProfile(userId: string): Promise<Profile | null> {
    return this.#profiles.get(userId, this.#readProfileOf);
  }

  readonly #readProfileOf = (userId: string): Promise<Profile | null> => this.#readProfile(userId);

  async #readProfile(userId: string): Promise<Profile | null> {
    const row = await this.#repo.findByUserId(userId);
    if (!row) return null;
    const dataKey = await this.#unwrapDataKey(row.wrapped_dek, userId);
    if (!dataKey) throw new Error(`the data key of ${userId} does not unwrap`);
    const email = this.#open(dataKey, row.email_enc, `${userId}:email`);
    if (email === null) throw new Error(`the email of ${userId} does not decrypt`);
    // A name that fails authentication is tampering or corruption, not "no name": fail closed like the email.
    const name = row.name_enc === null ? null : this.#open(dataKey, row.name_enc, `${userId}:name`);
    if (row.name_enc !== null && name === null) throw new Error(`the name of ${userId} does not decrypt`);
    return Object.freeze({ userId, email, name, dataKey });
  }

  /** User ids of profiles created at or before `before`, in id order after `afterUserId` (the orphan sweep). */
  async profileIdsCreatedBefore(before: number, afterUserId: string, limit: number): Promise<string[]> {
    return this.#repo.idsCreatedBefore(before, afterUserId, limit);
  }

  async deleteProfile(userId: string): Promise<void> {
    await this.#repo.delete(userId);
  }

  /** Encrypts another personal field of the user (an IP address, a user agent) under their data key. */
  sealForUser(profile: Pick<Profile, 'userId' | 'dataKey'>, value: string, field: string): string {
    return encrypt(profile.dataKey, value, `${profile.userId}:${field}`);
  }

  /**
   * Decrypts a field sealed by `sealForUser`: null only when nothing was stored. A value that
   * fails authentication (tampering, corruption, another user's or field's ciphertext moved
   * here) throws, so it surfaces as a logged 500 with an incident id, never as "no value".
   */
  openForUser(profile: Pick<Profile, 'userId' | 'dataKey'>, sealed: string | null, field: string): string | null {
    if (sealed === null) return null;
    const value = this.#open(profile.dataKey, sealed, `${profile.userId}:${field}`);
    if (value === null) throw new Error(`the ${field} field of ${profile.userId} does not decrypt`);
    return value;
  }

  async #unwrapDataKey(wrapped: string, userId: string): Promise<Buffer | null> {
    const aad = `dek:${userId}`;
    const hit = this.#dataKeys.get(wrapped, aad);
    if (hit) return hit;
    const dataKey = await this.keys.unwrap(wrapped, aad);
    if (dataKey) this.#dataKeys.set(wrapped, aad, dataKey);
    return dataKey;
  }

  /** Decrypts a field; the same ciphertext under the same key and place opens from memory for a minute. */
  #open(dataKey: Buffer, sealed: string, aad: string): string | null {
    // The data key is part of the entry's identity: a ciphertext only opens to the value it opened to under this key.
    return this.#fields.open(sealed, `${dataKey.toString('base64url')}:${aad}`, () => decryptString(dataKey, sealed, aad));
  }
}

/**
 * The canonical form of an email for lookups: NFC, trimmed, lower-cased. Local
 * parts are case-sensitive in theory (RFC 5321 §2.4) but not in any mailbox
 * provider people use, and two accounts differing only in case invite takeover.
 */
export function normalizeEmail(email: string): string {
  return email.normalize('NFC').trim().toLowerCase();
}
