/**
 * A small bounded memo of values opened from sealed input (an unwrapped data
 * key, a decrypted field), keyed by the exact sealed bytes and their associated
 * data. AES-GCM is deterministic on decryption, so a hit returns exactly what
 * opening again would: the cache saves the cipher set-up on hot paths
 * (`GET /v1/session` opens the data key, email, name, session address and user
 * agent on every request) without changing any answer.
 *
 * Bounded in entries and in time: a value leaves memory at most `ttlMs` after
 * it was opened, and its key is the ciphertext itself, so once the ciphertext is
 * gone from the store (account deleted: crypto-shredding; master key rotated:
 * re-wrapped) nothing can ask for the entry again.
 */
export class OpenedCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(sealed: string, aad: string): V | undefined {
    const key = `${aad}\u0000${sealed}`;
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(sealed: string, aad: string, value: V): void {
    if (this.#entries.size >= this.maxEntries) {
      // Oldest first (Map keeps insertion order).
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(`${aad}\u0000${sealed}`, { value, expiresAt: this.now() + this.ttlMs });
  }

  /** Opens through `open` on a miss; null results are not kept. */
  open(sealed: string, aad: string, open: () => V | null): V | null {
    const hit = this.get(sealed, aad);
    if (hit !== undefined) return hit;
    const value = open();
    if (value !== null) this.set(sealed, aad, value);
    return value;
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
