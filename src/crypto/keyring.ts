import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { KeyringTable } from '../store/schema.js';
import type { KeyProvider } from './key-provider.js';

interface KeyringDB {
  keyring: KeyringTable;
}

/**
 * Random 256-bit purpose keys (CSRF binding, blind index, API-token HMAC…),
 * generated once per deployment, stored wrapped by the master key and shared by
 * every instance through the store. Each purpose is a separate key so that a
 * compromise or rotation of one never touches another.
 */
export class Keyring {
  readonly #db: Kysely<KeyringDB>;
  readonly #provider: KeyProvider;
  /** Unwrapped keys by `purpose:version`, for `keyAt` (a key never changes once written). */
  readonly #byVersion = new Map<string, Buffer>();

  constructor(db: Kysely<any>, provider: KeyProvider) {
    this.#db = db as Kysely<KeyringDB>;
    this.#provider = provider;
  }

  /**
   * The newest version of `purpose` and its key, read from the table now (another
   * instance or the CLI may have rotated); version 1 is created on first use (safe under
   * concurrent instances). `executor`: a transaction to read and write in (on SQLite a read
   * outside the open transaction would wait for its one connection).
   */
  async current(purpose: string, executor: Kysely<any> | Transaction<any> = this.#db): Promise<{ version: number; key: Buffer }> {
    const db = executor as Kysely<KeyringDB>;
    let latest = await this.#latest(purpose, db);
    if (!latest) {
      const wrapped = await this.#provider.wrap(randomBytes(32), keyringAad(purpose, 1));
      await db.insertInto('keyring')
        .values({ purpose, version: 1, wrapped_key: wrapped, created_at: Date.now() })
        .onConflict((oc) => oc.doNothing())
        .execute();
      latest = await this.#latest(purpose, db);
    }
    if (!latest) throw new Error(`keyring: could not create the ${purpose} key`);
    const version = Number(latest.version);
    return { version, key: (await this.keyAt(purpose, version, executor))! };
  }

  /**
   * Version `version` of `purpose`, unwrapped; null when the keyring has no such version.
   * A version never changes once written, so it is read and unwrapped once per process
   * (a value sealed under a version another instance has just added costs one read).
   * `executor`: as for `current`.
   */
  async keyAt(purpose: string, version: number, executor: Kysely<any> | Transaction<any> = this.#db): Promise<Buffer | null> {
    const id = `${purpose}:${version}`;
    const kept = this.#byVersion.get(id);
    if (kept) return kept;
    const row = await (executor as Kysely<KeyringDB>)
      .selectFrom('keyring').select('wrapped_key')
      .where('purpose', '=', purpose).where('version', '=', version)
      .executeTakeFirst();
    if (!row) return null;
    const key = await this.#provider.unwrap(row.wrapped_key, keyringAad(purpose, version));
    if (!key) throw new Error(`keyring: version ${version} of the ${purpose} key does not unwrap with the master key (wrong MASTER_KEY_FILE?)`);
    this.#byVersion.set(id, key);
    return key;
  }

  /**
   * The versions of `purpose` in the keyring and when each was added, newest first (empty
   * when none yet), read from the table now. For purposes whose older versions must still be
   * tried (a blind index being re-keyed): the keys themselves come from `keyAt`, once per process.
   */
  async versionsOf(purpose: string, executor: Kysely<any> | Transaction<any> = this.#db): Promise<Array<{ version: number; createdAt: number }>> {
    const rows = await (executor as Kysely<KeyringDB>)
      .selectFrom('keyring').select(['version', 'created_at'])
      .where('purpose', '=', purpose)
      .orderBy('version', 'desc')
      .execute();
    return rows.map((row) => ({ version: Number(row.version), createdAt: Number(row.created_at) }));
  }

  /**
   * Deletes the versions of `purpose` below `below` (retiring keys nothing refers to any
   * more; the caller proves that first). Returns how many were deleted.
   */
  async deleteVersionsBelow(purpose: string, below: number, executor: Kysely<any> | Transaction<any> = this.#db): Promise<number> {
    const result = await (executor as Kysely<KeyringDB>)
      .deleteFrom('keyring')
      .where('purpose', '=', purpose).where('version', '<', below)
      .executeTakeFirst();
    for (let version = 1; version < below; version++) this.#byVersion.delete(`${purpose}:${version}`);
    return Number(result.numDeletedRows);
  }

  /**
   * Adds a new random version of `purpose` and returns its number; what encrypts
   * under `purpose` takes it from then on, older versions stay for reading. Two
   * rotations at once both succeed, one after the other. `executor`: a transaction
   * to write in (with the event that records the rotation).
   */
  async rotate(purpose: string, executor: Kysely<any> | Transaction<any> = this.#db): Promise<number> {
    const db = executor as Kysely<KeyringDB>;
    for (;;) {
      const latest = await this.#latest(purpose, db);
      const version = (latest ? Number(latest.version) : 0) + 1;
      const wrapped = await this.#provider.wrap(randomBytes(32), keyringAad(purpose, version));
      const inserted = await db
        .insertInto('keyring')
        .values({ purpose, version, wrapped_key: wrapped, created_at: Date.now() })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) {
        return version;
      }
    }
  }

  async #latest(purpose: string, db: Kysely<KeyringDB> = this.#db) {
    return db
      .selectFrom('keyring')
      .selectAll()
      .where('purpose', '=', purpose)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
  }
}

/** The associated data binding a wrapped purpose key to its place. */
export function keyringAad(purpose: string, version: number): string {
  return `keyring:${purpose}:${version}`;
}

const VERSIONED = /^k([1-9][0-9]{0,8})\.(.+)$/s;

/** A value sealed under version `version` of a purpose key, as stored: `k<version>.<sealed>`. */
export function withKeyVersion(version: number, sealed: string): string {
  return `k${version}.${sealed}`;
}

/**
 * The version of the purpose key that sealed a stored value, and the sealed value. A bare
 * sealed value (base64url has no dot) was written before versions and is version 1.
 */
export function keyVersionOf(stored: string): { version: number; sealed: string; bare: boolean } {
  const versioned = VERSIONED.exec(stored);
  return versioned ? { version: Number(versioned[1]), sealed: versioned[2]!, bare: false } : { version: 1, sealed: stored, bare: true };
}
