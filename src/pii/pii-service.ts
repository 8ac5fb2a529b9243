import { randomBytes } from 'node:crypto';
import { decryptString, encrypt } from '../crypto/aead.js';
import { type HeldKey, KeyVersions, storedHmac } from '../crypto/hmac-key-versions.js';
import type { KeyProvider } from '../crypto/key-provider.js';
import { type Keyring, keyVersionOf, withKeyVersion } from '../crypto/keyring.js';
import { constantTimeEqual } from '../crypto/constant-time.js';
import { OpenedCache } from '../crypto/opened-cache.js';
import { isUniqueViolation } from '../store/errors.js';
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
/** Profiles read per page while re-keying the blind index. */
const REINDEX_BATCH = 500;

/** The keyring purpose of the email blind index (in the PII store's keyring). */
export const BLIND_INDEX_PURPOSE = 'blind-index';
/** A stored blind index: version 1 is the bare HMAC (as written before versions), later ones `k<version>.<hmac>`. */
function indexUnder(key: HeldKey, normalizedEmail: string): string {
  return storedHmac(key, `email:${normalizedEmail}`);
}

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
    this.#indexKeys = new KeyVersions(keyring, BLIND_INDEX_PURPOSE);
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

  /**
   * The blind-index key versions this process holds, newest first. A rotation adds a
   * version and re-keys every stored index to it (`rotateBlindIndex`); until the older
   * versions are retired, lookups try them too.
   */
  readonly #indexKeys: KeyVersions;

  /** The blind index of an email address under the current key version, as stored. */
  async emailIndex(email: string): Promise<string> {
    return indexUnder((await this.#indexKeys.all())[0]!, normalizeEmail(email));
  }

  /** The address's blind index under every key version held, newest first (to find or remove rows written under any). */
  async emailIndexes(email: string): Promise<string[]> {
    const normalized = normalizeEmail(email);
    return (await this.#indexKeys.all()).map((key) => indexUnder(key, normalized));
  }

  /** Whether a stored blind index (of any key version) is that of `email`; compared in constant time. */
  async emailMatchesIndex(email: string, stored: string): Promise<boolean> {
    const { version } = keyVersionOf(stored);
    let key = (await this.#indexKeys.all()).find((held) => held.version === version);
    if (!key) key = (await this.#indexKeys.newAfterMiss([])).find((held) => held.version === version);
    return key !== undefined && constantTimeEqual(indexUnder(key, normalizeEmail(email)), stored);
  }

  async findUserIdByEmail(email: string): Promise<string | null> {
    return (await this.findByEmail(email))?.userId ?? null;
  }

  /**
   * The profile holding the address: one indexed read under the current key version; the
   * older versions (while a rotation's re-keying is not retired) only when that finds none.
   */
  async findByEmail(email: string): Promise<{ userId: string; createdAt: number } | null> {
    const normalized = normalizeEmail(email);
    const keys = await this.#indexKeys.all();
    let row = await this.#findUnder(keys, normalized);
    if (!row) {
      const added = await this.#indexKeys.newAfterMiss(keys);
      if (added.length > 0) row = await this.#findUnder(added, normalized);
    }
    return row ? { userId: row.user_id, createdAt: row.created_at } : null;
  }

  async #findUnder(keys: readonly HeldKey[], normalizedEmail: string) {
    for (const key of keys) {
      const row = await this.#repo.findByEmailIndex(indexUnder(key, normalizedEmail));
      if (row) return row;
    }
    return undefined;
  }

  /**
   * Adds a blind-index key version and re-keys every stored index to it: each profile's
   * email is decrypted under its data key and its index recomputed, one compare-and-set
   * per row (a re-run continues where a killed one stopped). Lookups try every version
   * held, so addresses stay findable throughout; processes that still hold only the old
   * version read the new one at their first miss. A row whose email does not open, or whose
   * new index is taken (a duplicate written during the rotation), is left and counted.
   */
  async rotateBlindIndex(): Promise<{ version: number; reindexed: number; unreadable: number; conflicts: number }> {
    await this.keyring.current(BLIND_INDEX_PURPOSE); // a first rotation makes version 2, not 1
    await this.keyring.rotate(BLIND_INDEX_PURPOSE);
    return this.reindexToCurrentKey();
  }

  /** Re-keys every stored blind index that is not under the current key version (see `rotateBlindIndex`). */
  async reindexToCurrentKey(): Promise<{ version: number; reindexed: number; unreadable: number; conflicts: number }> {
    const current = (await this.#indexKeys.reread())[0]!;
    const counts = { version: current.version, reindexed: 0, unreadable: 0, conflicts: 0 };
    let after = '';
    for (;;) {
      const batch = await this.#repo.indexPage(after, REINDEX_BATCH);
      if (batch.length === 0) return counts;
      for (const row of batch) {
        if (keyVersionOf(row.email_index).version === current.version) continue;
        const dataKey = await this.#unwrapDataKey(row.wrapped_dek, row.user_id);
        const email = dataKey && decryptString(dataKey, row.email_enc, `${row.user_id}:email`);
        if (!email) {
          counts.unreadable++;
          continue;
        }
        try {
          if (await this.#repo.replaceEmailIndex(row.user_id, row.email_index, indexUnder(current, normalizeEmail(email)), this.clock.now())) counts.reindexed++;
        } catch (error) {
          // The unique index: another profile already holds this address under the new version.
          // Anything else (the store gone) stops the run; a re-run continues where it stopped.
          if (!isUniqueViolation(error)) throw error;
          counts.conflicts++;
        }
      }
      after = batch[batch.length - 1]!.user_id;
    }
  }

  /** The blind-index key versions in the keyring and when each was added, newest first. */
  async blindIndexKeyVersions(): Promise<Array<{ version: number; createdAt: number }>> {
    return (await this.#indexKeys.reread()).map(({ version, createdAt }) => ({ version, createdAt }));
  }

  /**
   * Profiles whose blind index is not under the current key version (none once a rotation has
   * re-keyed them all). Before any rotation every index is the bare version-1 form: none.
   */
  async profilesNotUnderCurrentIndexKey(): Promise<{ version: number; count: number }> {
    const current = (await this.#indexKeys.reread())[0]!;
    return { version: current.version, count: current.version === 1 ? 0 : await this.#repo.countIndexesNotUnder(withKeyVersion(current.version, '')) };
  }

  /** Deletes the blind-index key versions older than the current one (the caller proves nothing refers to them). */
  async retireOldBlindIndexKeys(): Promise<number[]> {
    const keys = await this.#indexKeys.reread();
    const retired = keys.slice(1).map((key) => key.version);
    if (retired.length > 0) await this.keyring.deleteVersionsBelow(BLIND_INDEX_PURPOSE, keys[0]!.version);
    await this.#indexKeys.reread();
    return retired;
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
