/**
 * A bounded memo of a pure computation: what a key once gave, it gives again,
 * without the work. Bounded in entries: when full it starts again empty, so a
 * flood of distinct keys costs only the computation again, never memory.
 * Only for results that are a function of the key alone (nothing that can be
 * revoked or can change while the process runs).
 */
export class BoundedMemo<K, V> {
  readonly #entries = new Map<K, V>();

  constructor(private readonly maxEntries: number) {}

  get(key: K, compute: (key: K) => V): V {
    let value = this.#entries.get(key);
    if (value === undefined) {
      if (this.#entries.size >= this.maxEntries) this.#entries.clear();
      value = compute(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  get size(): number {
    return this.#entries.size;
  }
}
