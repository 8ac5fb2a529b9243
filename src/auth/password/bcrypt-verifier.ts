import bcrypt from 'bcrypt';
import type { ForeignHashVerifier } from './hasher.js';

/** `$2a$`, `$2b$` or `$2y$`, a two-digit cost, 22 characters of salt and 31 of hash (bcrypt's base64). */
const BCRYPT_HASH = /^\$2([aby])\$(\d{2})\$[./A-Za-z0-9]{53}$/;

/** bcrypt hashes only the first 72 bytes of its input (and stops at a NUL byte in some implementations). */
export const BCRYPT_MAX_PASSWORD_BYTES = 72;

// A planted or careless hash must not make one verification take minutes:
// cost 15 is ~3 s on a server core (each step doubles the work).
export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 15;

/** The cost of a well-formed bcrypt hash, or null when the string is not one. */
export function parseBcryptHash(hash: string): { cost: number } | null {
  const match = BCRYPT_HASH.exec(hash);
  return match ? { cost: Number(match[2]) } : null;
}

/**
 * Verifies bcrypt hashes imported from another system (`rampart users import`);
 * the hasher flags every success as needing a rehash, and login replaces the
 * hash with argon2id at once.
 *
 * bcrypt silently ignores every byte after the 72nd, so an 80-byte password
 * and its first 72 bytes would both "match". ASVS V6.2.8 wants the password
 * verified exactly as entered: a password longer than 72 bytes is never
 * checked against a bcrypt hash (the user resets it instead), so no password
 * is ever accepted on the strength of a truncated prefix. The password is
 * used as typed, without our NFKC normalization: the other system hashed the
 * raw bytes.
 */
export class BcryptVerifier implements ForeignHashVerifier {
  matches(storedHash: string): boolean {
    return storedHash.startsWith('$2');
  }

  async verify(storedHash: string, password: string): Promise<boolean> {
    const parsed = parseBcryptHash(storedHash);
    if (!parsed || parsed.cost < BCRYPT_MIN_COST || parsed.cost > BCRYPT_MAX_COST) return false;
    const bytes = Buffer.from(password, 'utf8');
    const verifiable = bytes.length <= BCRYPT_MAX_PASSWORD_BYTES && !bytes.includes(0);
    // $2y$ (PHP) is the same algorithm as $2b$; the bcrypt package knows only $2a$ and $2b$.
    const normalized = storedHash.startsWith('$2y$') ? `$2b$${storedHash.slice(4)}` : storedHash;
    try {
      // Asynchronous: runs on a libuv worker, never on the event loop. A refused
      // password costs the same compare, so the refusal does not show in the timing.
      const matched = await bcrypt.compare(verifiable ? password : 'refused: longer than 72 bytes', normalized);
      return verifiable && matched;
    } catch {
      return false;
    }
  }
}
