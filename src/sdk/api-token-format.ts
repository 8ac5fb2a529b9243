/**
 * The API token format, shared by the server and the SDK (pure: no imports).
 *
 *   rpat_ <43 base62 characters: 256 random bits> <6 base62 characters: CRC32>
 *
 * The prefix lets secret scanners find leaked tokens; the checksum (CRC32 of
 * everything before it, as GitHub's tokens do) lets a scanner, the SDK and the
 * server tell a real token from a typo or a guess without a database lookup.
 * The checksum is not a security control: anyone can compute it. It only makes
 * malformed input cheap to refuse.
 */

export const API_TOKEN_PREFIX = 'rpat_';
/** 62^43 > 2^256, so 43 base62 characters hold 256 random bits. */
export const API_TOKEN_BODY_LENGTH = 43;
/** 62^6 > 2^32, so 6 base62 characters hold a CRC32. */
export const API_TOKEN_CHECKSUM_LENGTH = 6;
export const API_TOKEN_LENGTH = API_TOKEN_PREFIX.length + API_TOKEN_BODY_LENGTH + API_TOKEN_CHECKSUM_LENGTH;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SHAPE = /^rpat_[0-9A-Za-z]{49}$/;

/** `value` (a non-negative integer) in base62, left-padded with '0' to `length`. */
export function toBase62(value: bigint, length: number): string {
  if (value < 0n) throw new RangeError('toBase62 needs a non-negative value');
  let out = '';
  let rest = value;
  while (rest > 0n) {
    out = BASE62[Number(rest % 62n)]! + out;
    rest /= 62n;
  }
  if (out.length > length) throw new RangeError('value does not fit');
  return out.padStart(length, '0');
}

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial 0xEDB88320, reflected). A
 * checksum, not cryptography; `crc32('123456789') === 0xcbf43926`.
 * (zlib.crc32 only exists from Node 20.15; the SDK also runs in other runtimes.)
 */
export function crc32(text: string): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const bytes = new TextEncoder().encode(text);
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The 6-character checksum of `rpat_<body>`. */
export function apiTokenChecksum(prefixAndBody: string): string {
  return toBase62(BigInt(crc32(prefixAndBody)), API_TOKEN_CHECKSUM_LENGTH);
}

/** Builds a token from 32 random bytes (the caller supplies them from a CSPRNG). */
export function formatApiToken(randomBytes: Uint8Array): string {
  if (randomBytes.length !== 32) throw new TypeError('an API token needs exactly 32 random bytes');
  let value = 0n;
  for (const byte of randomBytes) value = (value << 8n) | BigInt(byte);
  const head = API_TOKEN_PREFIX + toBase62(value, API_TOKEN_BODY_LENGTH);
  return head + apiTokenChecksum(head);
}

/** Whether `value` looks like an API token at all (prefix), whatever its validity. */
export function isApiTokenLike(value: string): boolean {
  return value.startsWith(API_TOKEN_PREFIX);
}

/**
 * True when `value` has the exact shape of an API token and its checksum
 * matches. Costs a regex and a CRC32: no lookup, no secret involved.
 */
export function hasValidApiTokenChecksum(value: string): boolean {
  if (value.length !== API_TOKEN_LENGTH || !SHAPE.test(value)) return false;
  const split = value.length - API_TOKEN_CHECKSUM_LENGTH;
  return apiTokenChecksum(value.slice(0, split)) === value.slice(split);
}
