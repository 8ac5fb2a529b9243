import { parseOptions } from '@node-rs/argon2';
import type { Kysely } from 'kysely';
import { BCRYPT_MAX_COST, BCRYPT_MIN_COST, parseBcryptHash } from '../auth/password/bcrypt-verifier.js';
import type { Clock } from '../clock.js';
import { randomId } from '../crypto/random.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { PiiService } from '../pii/pii-service.js';
import { isUniqueViolation } from '../store/errors.js';
import type { UserRepository, UserRow } from '../store/repositories/users.js';
import type { MainDB } from '../store/schema.js';
import { claimAddress } from './orphan-profiles.js';

/** One account to import: `{"email", "name", "passwordHash"}` on one line. */
export interface ImportRecord {
  email: string;
  name: string | null;
  passwordHash: string;
  hashFormat: 'bcrypt' | 'argon2';
}

export type ParsedImportLine = { ok: true; record: ImportRecord } | { ok: false; reason: string };

const EMAIL = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;
const NAME = /^[^\p{Cc}\u2028\u2029]+$/u;
const FIELDS = new Set(['email', 'name', 'passwordHash']);

// The bounds the hasher applies when verifying (hasher.ts): a hash beyond them could never verify.
const MAX_ARGON2_MEMORY_KIB = 262144;
const MAX_ARGON2_ITERATIONS = 16;
const MAX_ARGON2_PARALLELISM = 4;

/**
 * The format of an importable hash, or a reason it is refused. Reasons never
 * quote the hash: the operator's terminal and logs must not collect them.
 */
export function classifyHash(hash: string, options: ImportOptions = {}): { format: 'bcrypt' | 'argon2' } | { reason: string } {
  if (hash.startsWith('$2')) {
    const parsed = parseBcryptHash(hash);
    if (!parsed) return { reason: 'passwordHash is not a well-formed bcrypt hash ($2a$/$2b$/$2y$, cost, 53 characters)' };
    if (parsed.cost < BCRYPT_MIN_COST || parsed.cost > BCRYPT_MAX_COST) return { reason: `bcrypt cost must be ${BCRYPT_MIN_COST}-${BCRYPT_MAX_COST}` };
    if (parsed.cost < BCRYPT_STORAGE_MIN_COST && !options.acceptWeakBcrypt) {
      return { reason: `bcrypt cost ${parsed.cost} is below ${BCRYPT_STORAGE_MIN_COST} (ASVS 5.0 Appendix C), too cheap to keep at rest; import with --accept-weak-bcrypt to keep it only until the user's first login, which re-hashes it with argon2id` };
    }
    return { format: 'bcrypt' };
  }
  if (/^\$argon2(id|i|d)\$/.test(hash)) {
    let options;
    try {
      options = parseOptions(hash);
    } catch {
      return { reason: 'passwordHash is not a well-formed argon2 PHC string' };
    }
    if (options.memoryCost > MAX_ARGON2_MEMORY_KIB || options.timeCost > MAX_ARGON2_ITERATIONS || options.parallelism > MAX_ARGON2_PARALLELISM) {
      return { reason: 'argon2 parameters exceed what this server verifies (m <= 262144, t <= 16, p <= 4)' };
    }
    return { format: 'argon2' };
  }
  return { reason: 'passwordHash must be bcrypt ($2a$, $2b$, $2y$) or argon2 PHC ($argon2id$, $argon2i$, $argon2d$)' };
}

export interface ImportOptions {
  /** --accept-weak-bcrypt: keep bcrypt hashes of cost below 10 until each user's first login. */
  acceptWeakBcrypt?: boolean;
}

/** The least bcrypt cost stored without the explicit option (ASVS 5.0 Appendix C: 10). */
export const BCRYPT_STORAGE_MIN_COST = 10;

/** Parses and validates one JSON line. */
export function parseImportLine(text: string, options: ImportOptions = {}): ParsedImportLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not a JSON object' };
  const object = value as Record<string, unknown>;
  const unknown = Object.keys(object).find((key) => !FIELDS.has(key));
  if (unknown !== undefined) return { ok: false, reason: `unknown field "${unknown.slice(0, 40)}"` };
  const { email, name, passwordHash } = object;
  if (typeof email !== 'string' || email.length < 3 || email.length > 254 || !EMAIL.test(email)) return { ok: false, reason: 'email is missing or not an address' };
  if (name !== undefined && name !== null && (typeof name !== 'string' || name.length < 1 || name.length > 200 || !NAME.test(name))) {
    return { ok: false, reason: 'name must be a single line of 1-200 characters, or null' };
  }
  if (typeof passwordHash !== 'string' || passwordHash.length > 512) return { ok: false, reason: 'passwordHash is missing' };
  const format = classifyHash(passwordHash, options);
  if ('reason' in format) return { ok: false, reason: format.reason };
  return { ok: true, record: { email, name: typeof name === 'string' ? name : null, passwordHash, hashFormat: format.format } };
}

/**
 * Creates accounts from another system's users, keeping their password hashes:
 * bcrypt hashes verify through the bcrypt `ForeignHashVerifier`, and login
 * replaces them (and argon2 hashes weaker than ours) with argon2id at the first
 * successful sign-in. Same write order as signup: the encrypted profile first,
 * then the account and its event in one main-store transaction.
 */
export class UserImporter {
  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {}

  /**
   * 'exists' when an account already has the address (it is left untouched);
   * 'in_flight' when only a young profile without an account has it (a signup or
   * import still writing, or one that crashed minutes ago: run the import again
   * later). An older such profile, left by a crash, is released and the record imported.
   */
  async importRecord(record: ImportRecord): Promise<'imported' | 'exists' | 'in_flight'> {
    const claim = await claimAddress(this.pii, this.users, this.clock.now(), record.email);
    if (claim === 'account') return 'exists';
    if (claim === 'in_flight') return 'in_flight';
    const userId = randomId('usr');
    try {
      await this.pii.createProfile(userId, record.email, record.name);
    } catch (error) {
      if (isUniqueViolation(error)) return 'exists';
      throw error;
    }
    const now = this.clock.now();
    const user: UserRow = {
      id: userId, status: 'active', password_hash: record.passwordHash, password_changed_at: now,
      email_verified: 0, mfa_enabled: 0, created_at: now, updated_at: now,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await this.users.insert(user, trx);
        await this.events.record({
          action: 'user.created', actor: { type: 'system', id: null }, target: { type: 'user', id: userId },
          outcome: 'success', details: { via: 'import', hashFormat: record.hashFormat },
        }, trx);
      });
    } catch (error) {
      await this.pii.deleteProfile(userId).catch(() => undefined);
      throw error;
    }
    return 'imported';
  }

  /** The summary event of one run. */
  async recordRun(counts: { imported: number; skipped: number; failed: number }): Promise<void> {
    await this.events.record({
      action: 'user.imported', actor: { type: 'system', id: null }, outcome: counts.failed > 0 ? 'failure' : 'success', details: counts,
    });
  }
}
