import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
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
  readonly #cache = new Map<string, Buffer>();

  constructor(db: Kysely<any>, provider: KeyProvider) {
    this.#db = db as Kysely<KeyringDB>;
    this.#provider = provider;
  }

  /** The current key for `purpose`, created on first use (safe under concurrent instances). */
  async key(purpose: string): Promise<Buffer> {
    const cached = this.#cache.get(purpose);
    if (cached) return cached;
    let row = await this.#latest(purpose);
    if (!row) {
      const wrapped = await this.#provider.wrap(randomBytes(32), keyringAad(purpose, 1));
      await this.#db
        .insertInto('keyring')
        .values({ purpose, version: 1, wrapped_key: wrapped, created_at: Date.now() })
        .onConflict((oc) => oc.doNothing())
        .execute();
      row = await this.#latest(purpose);
    }
    if (!row) throw new Error(`keyring: could not create the ${purpose} key`);
    const key = await this.#provider.unwrap(row.wrapped_key, keyringAad(purpose, row.version));
    if (!key) throw new Error(`keyring: the ${purpose} key does not unwrap with the master key (wrong MASTER_KEY_FILE?)`);
    this.#cache.set(purpose, key);
    return key;
  }

  async #latest(purpose: string) {
    return this.#db
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
