import { hmacSha256 } from './hash.js';
import { keyVersionOf, withKeyVersion, type Keyring } from './keyring.js';

/** One version of a purpose key, as a process holds it. */
export interface HeldKey {
  version: number;
  key: Buffer;
  /** When the version was added to the keyring (epoch ms). */
  createdAt: number;
}

/** The versions held are re-read once they are this old (elapsed real time). */
export const KEY_VERSIONS_REFRESH_MS = 60_000;
/** After a miss the versions are re-read at most this often (another instance may hold a newer one). */
export const KEY_VERSIONS_MISS_REFRESH_MS = 1_000;
/** Older versions of a key are retired no sooner than this after a rotation: every running server has read the new one by then. */
export const KEY_RETIRE_AFTER_MS = 2 * KEY_VERSIONS_REFRESH_MS;

/**
 * The versions of one keyring purpose key that a process holds, newest first: re-read from
 * the keyring once a minute, and after a miss at most once a second, so that a rotation by
 * the CLI (or another instance) reaches every running server within a minute without a
 * read per request. For HMAC keys whose stored values must stay checkable across a rotation
 * (API-token and recovery-code verifiers) and for those that only name counters (rate limits,
 * login back-off), which just take the newest version.
 */
export class KeyVersions {
  #held: { readAt: number; keys: HeldKey[] } | null = null;
  #reading: Promise<HeldKey[]> | null = null;

  readonly #refreshMs: number;
  readonly #missRefreshMs: number;

  constructor(
    private readonly keyring: Keyring,
    readonly purpose: string,
    intervals: { refreshMs?: number | undefined; missRefreshMs?: number | undefined } = {},
  ) {
    this.#refreshMs = intervals.refreshMs ?? KEY_VERSIONS_REFRESH_MS;
    this.#missRefreshMs = intervals.missRefreshMs ?? KEY_VERSIONS_MISS_REFRESH_MS;
  }

  /** Every version held, newest first (version 1 is created on first use). */
  async all(): Promise<HeldKey[]> {
    const held = this.#held;
    // Elapsed real time, not the injectable clock: a cache of key versions, not a security decision.
    if (held && performance.now() - held.readAt < this.#refreshMs) return held.keys;
    return this.reread();
  }

  /** The newest version held: what new values are computed under. */
  async current(): Promise<HeldKey> {
    return (await this.all())[0]!;
  }

  /**
   * The newest version held, without waiting (hot paths): a stale set is re-read in the
   * background and taken once read; a failed re-read is tried again a second later. Null
   * before the first read (`all`).
   */
  currentHeld(): HeldKey | null {
    const held = this.#held;
    if (held && !this.#reading && performance.now() - held.readAt >= this.#refreshMs) {
      this.reread().catch(() => {
        this.#held = { ...held, readAt: performance.now() - this.#refreshMs + this.#missRefreshMs };
      });
    }
    return held?.keys[0] ?? null;
  }

  /** Reads the versions again now (one small query; each version's key is unwrapped once per process). */
  reread(): Promise<HeldKey[]> {
    this.#reading ??= (async () => {
      try {
        await this.keyring.current(this.purpose); // creates version 1 on first use
        const keys: HeldKey[] = [];
        for (const { version, createdAt } of await this.keyring.versionsOf(this.purpose)) {
          const key = await this.keyring.keyAt(this.purpose, version);
          if (key) keys.push({ version, key, createdAt });
        }
        this.#held = { readAt: performance.now(), keys };
        return keys;
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  /** After a miss: re-reads the versions at most once a second; the versions not in `tried`, or none. */
  async newAfterMiss(tried: readonly HeldKey[]): Promise<HeldKey[]> {
    if (this.#held && performance.now() - this.#held.readAt < this.#missRefreshMs) return [];
    const fresh = await this.reread();
    return fresh.filter((candidate) => !tried.some((held) => held.version === candidate.version));
  }
}

/**
 * An HMAC verifier as stored: version 1 bare (as written before keys rotated), later
 * versions prefixed `k<version>.` so that `retire` can tell what is still under an old key.
 */
export function storedHmac(held: Pick<HeldKey, 'version' | 'key'>, value: string): string {
  const mac = hmacSha256(held.key, value);
  return held.version === 1 ? mac : withKeyVersion(held.version, mac);
}

/** The key version a stored verifier was computed under (see `storedHmac`). */
export function storedHmacVersion(stored: string): number {
  return keyVersionOf(stored).version;
}

/**
 * Finds a stored verifier of `value` under any version held, newest first: `lookup` is asked
 * for each candidate until it returns something. On a miss the versions are re-read (at most
 * once a second) and any version new to this process is tried too.
 */
export async function findUnderAnyVersion<T>(
  versions: KeyVersions,
  value: string,
  lookup: (stored: string) => Promise<T | undefined | null>,
): Promise<{ found: T | undefined; stored: string }> {
  const held = await versions.all();
  let first: string | undefined;
  for (const key of held) {
    const stored = storedHmac(key, value);
    first ??= stored;
    const found = await lookup(stored);
    if (found !== undefined && found !== null) return { found, stored };
  }
  for (const key of await versions.newAfterMiss(held)) {
    const stored = storedHmac(key, value);
    const found = await lookup(stored);
    if (found !== undefined && found !== null) return { found, stored };
  }
  return { found: undefined, stored: first! };
}
