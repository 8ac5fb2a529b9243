/**
 * Canonical JSON (RFC 8785, JCS, for the values we store): object members sorted
 * by their UTF-16 code units, no whitespace, numbers and strings serialized as
 * ECMAScript does. The same value always yields the same text, so the audit
 * chain can hash an event and anyone can recompute the hash from an export.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no form for NaN or Infinity');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, member]) => member !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([key, member]) => `${JSON.stringify(key)}:${canonicalJson(member)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no form for a ${typeof value}`);
  }
}

/**
 * What a JSON round trip makes of a value (dates become strings, undefined
 * members vanish). Details are normalized this way before hashing, so the hash
 * computed at append time equals the one recomputed from the stored text.
 */
export function jsonNormalize<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
