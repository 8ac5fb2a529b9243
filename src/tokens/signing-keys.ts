import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { KeyProvider } from '../crypto/key-provider.js';
import { randomToken } from '../crypto/random.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { SigningKeyRepository, SigningKeyRow } from '../store/repositories/signing-keys.js';
import type { MainDB } from '../store/schema.js';

/** The one signing algorithm: Ed25519 (RFC 8037). ASVS V11.6.1 allows EdDSA; never RS256 or HS*. */
export const SIGNING_ALGORITHM = 'EdDSA';
/** How long an instance trusts its cached view of the key table before reading it again. */
export const KEY_CACHE_MS = 60_000;
/** Allowance for clocks of instances and verifiers that disagree a little. */
const CLOCK_SKEW_MS = 60_000;

export interface PublicJWK {
  kty: string;
  crv: string;
  x: string;
  kid: string;
  alg: string;
  use: string;
}

export interface SigningKeyOptions {
  /** A key signs for this long before the next signing operation rotates it (the schedule). */
  rotationIntervalMs: number;
  /** The longest lifetime of a token a key signs (the access-token TTL). */
  maxTokenLifetimeMs: number;
}

interface CachedKeys {
  loadedAt: number;
  rows: SigningKeyRow[];
}

/**
 * Access-token signing keys: Ed25519 pairs generated here, the private half
 * stored wrapped by the master key (envelope encryption) and destroyed at
 * retirement. Rotation happens on a schedule (checked lazily whenever a key is
 * needed, so no timer is involved and every instance agrees through the store)
 * and on demand (`rampart keys rotate`). A retired key stays in the JWKS until
 * every token it signed has expired: its retirement time, plus the token
 * lifetime, plus the time other instances may keep signing with their cached
 * view, plus clock skew.
 */
export class SigningKeyService {
  #cache: CachedKeys | null = null;
  #loading: Promise<CachedKeys> | null = null;
  readonly #privateKeys = new Map<string, KeyObject>();
  readonly #publicKeys = new Map<string, KeyObject>();

  constructor(
    private readonly repo: SigningKeyRepository,
    private readonly db: Kysely<MainDB>,
    private readonly keys: KeyProvider,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
    private readonly options: SigningKeyOptions,
  ) {}

  /** How long a key stays published after it stops signing. */
  get publishAfterRetirementMs(): number {
    return this.options.maxTokenLifetimeMs + KEY_CACHE_MS + CLOCK_SKEW_MS;
  }

  /** The key to sign with now: created on first use, rotated when older than the interval. */
  async signingKey(): Promise<{ kid: string; privateKey: KeyObject }> {
    let current = currentOf((await this.#rows()).rows);
    if (!current || this.clock.now() - current.created_at >= this.options.rotationIntervalMs) {
      await this.rotate(current ? 'scheduled' : 'initial', current?.kid ?? null);
      current = currentOf((await this.#rows(true)).rows);
    }
    if (!current || current.private_key_wrapped === null) throw new Error('signing keys: no current key after rotation');
    let privateKey = this.#privateKeys.get(current.kid);
    if (!privateKey) {
      const der = await this.keys.unwrap(current.private_key_wrapped, signingKeyAad(current.kid));
      if (!der) throw new Error(`signing keys: the key ${current.kid} does not unwrap with the master key`);
      privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      this.#privateKeys.set(current.kid, privateKey);
    }
    return { kid: current.kid, privateKey };
  }

  /**
   * Starts signing with a new key and retires the current one. `expectedCurrent`
   * makes concurrent scheduled rotations by several instances produce one new
   * key: only the instance that retires the expected key inserts. Returns the
   * kid now signing.
   */
  async rotate(reason: 'initial' | 'scheduled' | 'manual', expectedCurrent: string | null = null): Promise<string> {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const kid = `${new Date(this.clock.now()).toISOString().slice(0, 10)}.${randomToken(9)}`;
    const now = this.clock.now();
    const jwk = publicKey.export({ format: 'jwk' }) as JsonWebKey;
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    const row: SigningKeyRow = {
      kid,
      alg: SIGNING_ALGORITHM,
      public_jwk: JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }),
      private_key_wrapped: await this.keys.wrap(der, signingKeyAad(kid)),
      created_at: now,
      retired_at: null,
    };
    const inserted = await this.db.transaction().execute(async (trx) => {
      const live = (await this.repo.list(trx)).filter((key) => key.retired_at === null);
      const current = live[0];
      if (reason !== 'manual' && (current?.kid ?? null) !== expectedCurrent) return false;
      if (current && !(await this.repo.retire(current.kid, now, trx))) return false;
      // Two instances starting at once may each have created a first key: retire them all.
      for (const other of live.slice(1)) await this.repo.retire(other.kid, now, trx);
      await this.repo.insert(row, trx);
      await this.repo.deleteRetiredBefore(now - this.publishAfterRetirementMs, trx);
      await this.events.record({
        action: 'signing_key.rotated', actor: { type: 'system', id: null }, target: { type: 'signing_key', id: kid },
        outcome: 'success', details: { reason, previousKid: current?.kid ?? null, alg: SIGNING_ALGORITHM },
      }, trx);
      return true;
    });
    const rows = (await this.#rows(true)).rows;
    return inserted ? kid : (currentOf(rows)?.kid ?? kid);
  }

  /** The public key for `kid` if it is published; rereads the table once when the kid is new to this instance. */
  async publicKey(kid: string | undefined): Promise<KeyObject | null> {
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 64) return null;
    let row = this.#published((await this.#rows()).rows).find((key) => key.kid === kid);
    if (!row && this.#cache && this.clock.now() - this.#cache.loadedAt >= 1_000) {
      // Another instance may have rotated; reread, at most once a second.
      row = this.#published((await this.#rows(true)).rows).find((key) => key.kid === kid);
    }
    if (!row) return null;
    let key = this.#publicKeys.get(kid);
    if (!key) {
      key = createPublicKey({ key: JSON.parse(row.public_jwk) as JsonWebKey, format: 'jwk' });
      this.#publicKeys.set(kid, key);
    }
    return key;
  }

  /** RFC 7517 key set: the current key and the retired ones whose tokens may still live. */
  async jwks(): Promise<{ keys: PublicJWK[] }> {
    const rows = (await this.#rows()).rows;
    if (!currentOf(rows)) await this.signingKey();
    return {
      keys: this.#published((await this.#rows()).rows).map((row) => ({
        ...(JSON.parse(row.public_jwk) as { kty: string; crv: string; x: string }),
        kid: row.kid,
        alg: row.alg,
        use: 'sig',
      })),
    };
  }

  #published(rows: SigningKeyRow[]): SigningKeyRow[] {
    const now = this.clock.now();
    return rows.filter((row) => row.retired_at === null || now - row.retired_at < this.publishAfterRetirementMs);
  }

  async #rows(force = false): Promise<CachedKeys> {
    const now = this.clock.now();
    if (!force && this.#cache && now - this.#cache.loadedAt < KEY_CACHE_MS && now >= this.#cache.loadedAt) return this.#cache;
    if (!force && this.#loading) return this.#loading;
    const loading = this.repo.list().then((rows) => {
      this.#cache = { loadedAt: this.clock.now(), rows };
      return this.#cache;
    });
    this.#loading = loading;
    try {
      return await loading;
    } finally {
      if (this.#loading === loading) this.#loading = null;
    }
  }
}

function currentOf(rows: SigningKeyRow[]): SigningKeyRow | undefined {
  return rows.find((row) => row.retired_at === null);
}

/** The associated data binding a wrapped private key to its kid (master key rotation re-wraps with it). */
export function signingKeyAad(kid: string): string {
  return `signing-key:${kid}`;
}
