import { decrypt, encrypt } from './aead.js';

/**
 * Wraps and unwraps data-encryption keys under a master key (envelope
 * encryption). The default provider reads a key file; a Vault transit provider
 * can implement the same interface. Wrapped keys carry the id of the master key
 * that wrapped them, so a rotation re-wraps without downtime: old ids still
 * unwrap until every key has been re-wrapped.
 */
export interface KeyProvider {
  /** Id of the master key that new wraps use. */
  readonly currentKeyId: string;
  wrap(key: Uint8Array, aad: string): Promise<string>;
  /** Returns null when the wrapped key is malformed, unknown or fails authentication. */
  unwrap(wrapped: string, aad: string): Promise<Buffer | null>;
  /** Ids of every master key this provider can unwrap with. */
  keyIds(): readonly string[];
}

/** A key provider over in-memory master keys (the first is current). */
export class StaticKeyProvider implements KeyProvider {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly currentKeyId: string;

  constructor(keys: ReadonlyArray<{ id: string; key: Buffer }>) {
    const first = keys[0];
    if (!first) throw new TypeError('at least one master key is required');
    for (const { id, key } of keys) {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new TypeError('master key ids are 1-64 characters of [A-Za-z0-9_-]');
      if (key.length !== 32) throw new TypeError('master keys are 32 bytes');
    }
    this.#keys = new Map(keys.map(({ id, key }) => [id, key]));
    this.currentKeyId = first.id;
  }

  async wrap(key: Uint8Array, aad: string): Promise<string> {
    return this.wrapSync(key, aad);
  }

  /** Synchronous form for hot paths; the file provider never needs I/O to wrap. */
  wrapSync(key: Uint8Array, aad: string): string {
    const master = this.#keys.get(this.currentKeyId)!;
    return `${this.currentKeyId}.${encrypt(master, key, `wrap:${aad}`)}`;
  }

  async unwrap(wrapped: string, aad: string): Promise<Buffer | null> {
    return this.unwrapSync(wrapped, aad);
  }

  unwrapSync(wrapped: string, aad: string): Buffer | null {
    const dot = wrapped.indexOf('.');
    if (dot <= 0) return null;
    const master = this.#keys.get(wrapped.slice(0, dot));
    if (!master) return null;
    return decrypt(master, wrapped.slice(dot + 1), `wrap:${aad}`);
  }

  keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }
}

/** The id of the master key that wrapped `wrapped`, or null. */
export function wrappingKeyId(wrapped: string): string | null {
  const dot = wrapped.indexOf('.');
  return dot > 0 ? wrapped.slice(0, dot) : null;
}
