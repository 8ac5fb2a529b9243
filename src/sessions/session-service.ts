import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../clock.js';
import { constantTimeEqual } from '../crypto/constant-time.js';
import { hmacSha256, sha256Hex } from '../crypto/hash.js';
import type { Keyring } from '../crypto/keyring.js';
import { BoundedMemo } from '../memo.js';
import { randomId, randomToken } from '../crypto/random.js';
import { RampartError } from '../errors.js';
import type { EventOrigin, SecurityEventInput, SecurityEvents } from '../events/security-events.js';
import type { PiiService, Profile } from '../pii/pii-service.js';
import type { ChangeFeed, TableChange } from '../store/change-feed.js';
import { altersRows, ReadCache } from '../store/read-cache.js';
import type { SessionRepository, SessionRow, SessionWithUser } from '../store/repositories/sessions.js';
import type { MainDB } from '../store/schema.js';

/** Idle-time bookkeeping writes at most this often per session, never on every request. */
const TOUCH_INTERVAL_MS = 60_000;
/** The keyring purpose of the CSRF tokens' HMAC key (main store). */
export const CSRF_KEY_PURPOSE = 'csrf';
/** How often a process re-reads the CSRF key's current version: `rampart keys rotate-csrf` may have added one. */
const CSRF_KEY_REFRESH_MS = 60_000;
/** A token that does not match makes the process re-read it, at most this often (another instance may already use a newer version). */
const CSRF_KEY_MISMATCH_REFRESH_MS = 1_000;
/** The cookie secret: 256 random bits, base64url. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * What can change a kept session: any write to `users` but a new account, any to
 * `sessions` but a new session and the idle-time bookkeeping (whose only effect a
 * cache could miss is an older `last_seen_at`, which makes `authenticate` reread).
 */
export function changesSession(change: TableChange): boolean {
  return altersRows(change, 'users') || altersRows(change, 'sessions', ['last_seen_at']);
}

export interface SessionLimits {
  idleTimeoutMinutes: number;
  absoluteTimeoutHours: number;
}

export interface NewSessionInput {
  userId: string;
  profile: Pick<Profile, 'userId' | 'dataKey'>;
  ip: string;
  userAgent: string | null;
  mfaVerified: boolean;
  mfaMethod: string | null;
  limits: SessionLimits;
}

export interface IssuedSession {
  /** The cookie value. Returned once; only its SHA-256 is stored. */
  secret: string;
  row: SessionRow;
}

/** What an authenticated request knows about its session. */
export type ActiveSession = SessionWithUser;

/**
 * Why one session ends at its user's request: `logout`, or `replaced` when a
 * sign-in in the same browser supersedes it (ASVS V7.2.4).
 */
export type SessionEndReason = 'logout' | 'replaced';

/**
 * Server-side sessions: 256-bit random secrets in the cookie, only their SHA-256
 * in the store; idle and absolute timeouts; a CSRF token bound to the session by
 * HMAC, so it needs no storage and dies with the session.
 */
export class SessionService {
  /** CSRF tokens kept computed: an HMAC costs more than the rest of a session check. */
  /**
   * The CSRF key in use and the tokens computed under it; when it was read by the clock (the
   * minute's refresh follows the injectable clock) and by elapsed real time (a mismatch's re-read).
   */
  #csrf: { version: number; key: Buffer; readAt: number; readAtMonotonic: number; tokens: BoundedMemo<string, string> } | null = null;
  /** Live sessions with their user's account fields, by id hash; emptied by any write that could change one. */
  readonly #live: ReadCache<string, SessionWithUser | undefined>;

  constructor(
    private readonly repo: SessionRepository,
    private readonly pii: PiiService,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    changes: ChangeFeed,
    /** The main store, for the transactions that end a session together with its event. */
    private readonly db: Kysely<MainDB>,
    private readonly events: SecurityEvents,
  ) {
    this.#live = new ReadCache({ feed: changes, dependsOn: changesSession, now: () => this.clock.now() });
  }

  async create(input: NewSessionInput, transaction?: Transaction<MainDB>): Promise<IssuedSession> {
    const secret = randomToken(32);
    const now = this.clock.now();
    const row: SessionRow = {
      id_hash: sha256Hex(secret),
      public_id: randomId('ses'),
      user_id: input.userId,
      created_at: now,
      last_seen_at: now,
      expires_at: now + input.limits.absoluteTimeoutHours * 3_600_000,
      idle_timeout_ms: input.limits.idleTimeoutMinutes * 60_000,
      mfa_verified: input.mfaVerified ? 1 : 0,
      mfa_method: input.mfaMethod,
      reauth_at: null,
      ip_enc: this.pii.sealForUser(input.profile, input.ip, 'session-ip'),
      user_agent_enc: input.userAgent === null ? null : this.pii.sealForUser(input.profile, input.userAgent, 'session-ua'),
    };
    await this.repo.insert(row, transaction);
    return { secret, row };
  }

  /**
   * The live session for a cookie secret, or null. Expired sessions are deleted
   * on sight. At most one indexed read, and a write at most once a minute per session.
   *
   * A session read from the store is kept in memory until a write that could
   * change it commits (see `changesSession`, `ReadCache`) or for a minute at most;
   * a kept session is used only while it is live and needs no bookkeeping, so an
   * expiry or a touch always goes by the row as the store has it now.
   */
  async authenticate(secret: string): Promise<ActiveSession | null> {
    if (!SECRET_PATTERN.test(secret)) return null;
    const idHash = sha256Hex(secret);
    const now = this.clock.now();
    const kept = this.#live.peek(idHash);
    if (kept && kept.user_status === 'active' && !isExpired(kept, now) && now - kept.last_seen_at < TOUCH_INTERVAL_MS) {
      // A copy: handlers may write to the session they are given.
      return { ...kept };
    }
    const session = await this.#live.load(idHash, () => this.repo.findByIdHash(idHash));
    if (!session) return null;
    if (isExpired(session, now) || session.user_status !== 'active') {
      await this.repo.deleteByIdHash(idHash);
      return null;
    }
    if (now - session.last_seen_at >= TOUCH_INTERVAL_MS) {
      await this.repo.touch(idHash, now);
      // The touch is not announced as a change (see `changesSession`): the kept row is now old.
      this.#live.delete(idHash);
      return { ...session, last_seen_at: now };
    }
    return { ...session };
  }

  /**
   * The stored session a cookie secret names, live or not, without touching it or
   * keeping it: for a sign-in that is about to replace it (ASVS V7.2.4).
   */
  async findBySecret(secret: string): Promise<SessionRow | null> {
    if (!SECRET_PATTERN.test(secret)) return null;
    return (await this.repo.findByIdHash(sha256Hex(secret))) ?? null;
  }

  /**
   * The live session with this public id, or null; read-only (a credential
   * derived from the session, such as an access JWT, neither extends nor
   * refreshes it). An access JWT minted from a session dies with it.
   */
  async findLiveByPublicId(publicId: string): Promise<ActiveSession | null> {
    const session = await this.repo.findByPublicId(publicId);
    if (!session || isExpired(session, this.clock.now()) || session.user_status !== 'active') return null;
    return session;
  }

  /**
   * The CSRF token of a session: HMAC(csrf key, session public id). Bound to the
   * public id rather than the secret so that it survives a rotation of the
   * secret (login step-up, password change) and clients keep working; it is
   * unforgeable without the server's key all the same.
   */
  async csrfToken(publicId: string): Promise<string> {
    const csrf = await this.#csrfKey();
    // The token is a pure function of the public id under one key version, so a memo per
    // version returns exactly what the HMAC would.
    return csrf.tokens.get(publicId, (id) => hmacSha256(csrf.key, `csrf:${id}`));
  }

  async isValidCsrfToken(publicId: string, token: string | undefined): Promise<boolean> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
    if (constantTimeEqual(await this.csrfToken(publicId), token)) return true;
    // Another instance may already issue tokens under a version this one has not read yet.
    const held = this.#csrf;
    if (held && performance.now() - held.readAtMonotonic < CSRF_KEY_MISMATCH_REFRESH_MS) return false;
    const csrf = await this.#readCsrfKey();
    return csrf.version !== held?.version && constantTimeEqual(await this.csrfToken(publicId), token);
  }

  /**
   * The current CSRF key, re-read once the one held is a minute old. Only the current
   * version makes or accepts tokens: after a rotation every token of the old key is refused
   * (403 `csrf_failed`) and clients take the new one from `GET /v1/session`.
   */
  async #csrfKey(): Promise<{ version: number; key: Buffer; tokens: BoundedMemo<string, string> }> {
    const held = this.#csrf;
    const now = this.clock.now();
    if (held && now - held.readAt < CSRF_KEY_REFRESH_MS && now >= held.readAt) return held;
    return this.#readCsrfKey();
  }

  async #readCsrfKey(): Promise<{ version: number; key: Buffer; tokens: BoundedMemo<string, string> }> {
    const current = await this.keyring.current(CSRF_KEY_PURPOSE);
    const held = this.#csrf;
    const read = { readAt: this.clock.now(), readAtMonotonic: performance.now() };
    this.#csrf = held && held.version === current.version
      ? { ...held, ...read }
      : { version: current.version, key: current.key, tokens: new BoundedMemo<string, string>(10_000), ...read };
    return this.#csrf;
  }

  /**
   * Gives a session a new secret (on privilege change): the old cookie stops
   * working at once, the public id and history stay. Returns the new secret, or
   * null when the session no longer exists.
   */
  async rotate(idHash: string, changes: Partial<Pick<SessionRow, 'mfa_verified' | 'mfa_method' | 'reauth_at'>> = {}, transaction?: Transaction<MainDB>): Promise<{ secret: string; idHash: string } | null> {
    const secret = randomToken(32);
    const newIdHash = sha256Hex(secret);
    if (!(await this.repo.rotateIdHash(idHash, newIdHash, transaction))) return null;
    if (Object.keys(changes).length > 0) await this.repo.update(newIdHash, changes, transaction);
    return { secret, idHash: newIdHash };
  }

  async update(idHash: string, changes: Partial<Pick<SessionRow, 'mfa_verified' | 'mfa_method' | 'reauth_at'>>, transaction?: Transaction<MainDB>): Promise<void> {
    await this.repo.update(idHash, changes, transaction);
  }

  async revoke(idHash: string, transaction?: Transaction<MainDB>): Promise<boolean> {
    return this.repo.deleteByIdHash(idHash, transaction);
  }

  async revokeByPublicId(userId: string, publicId: string, transaction?: Transaction<MainDB>): Promise<boolean> {
    return this.repo.deleteByPublicId(userId, publicId, transaction);
  }

  /** Ends every session of the user (except one, when given). Returns how many ended. */
  async revokeAllForUser(userId: string, exceptIdHash: string | null = null, transaction?: Transaction<MainDB>): Promise<number> {
    return this.repo.deleteAllForUser(userId, exceptIdHash, transaction);
  }

  /**
   * Ends one session at its user's request: deletes it and records
   * `session.revoked` (its user as the actor) in one transaction. A session
   * already gone (ended by another request, expired and swept) records nothing;
   * returns whether this call ended it.
   */
  async end(session: Pick<SessionRow, 'id_hash' | 'user_id' | 'public_id'>, reason: SessionEndReason, origin: EventOrigin): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await this.revoke(session.id_hash, trx))) return false;
      await this.events.record(sessionRevoked(session.user_id, session.public_id, reason, origin), trx);
      return true;
    });
  }

  /**
   * Ends the stored session a cookie secret names, if any, because a sign-in in
   * the same browser replaces it: a copy of the old cookie must not live on
   * (ASVS V7.2.4). Returns whether a session ended.
   */
  async endReplaced(secret: string, origin: EventOrigin): Promise<boolean> {
    // Read before the transaction: on SQLite a query outside it would wait for it forever.
    const replaced = await this.findBySecret(secret);
    return replaced ? this.end(replaced, 'replaced', origin) : false;
  }

  /**
   * Ends one of the user's own sessions by its public id (reason `user`).
   * Scoped by user: another user's session id is `not_found`, exactly like a
   * missing one, so ids cannot be probed.
   */
  async endOwnByPublicId(userId: string, publicId: string, origin: EventOrigin): Promise<void> {
    const ended = await this.db.transaction().execute(async (trx) => {
      if (!(await this.revokeByPublicId(userId, publicId, trx))) return false;
      await this.events.record(sessionRevoked(userId, publicId, 'user', origin), trx);
      return true;
    });
    if (!ended) throw new RampartError('not_found');
  }

  /**
   * Ends every session of the user but the one asking (reason `all_others`),
   * with one `session.revoked` event naming how many ended (also when none did:
   * the user asked). Returns how many ended.
   */
  async endAllOthers(userId: string, keptIdHash: string, origin: EventOrigin): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const count = await this.revokeAllForUser(userId, keptIdHash, trx);
      await this.events.record({
        action: 'session.revoked', actor: { type: 'user', id: userId }, target: { type: 'user', id: userId },
        origin, outcome: 'success', details: { reason: 'all_others', count },
      }, trx);
      return count;
    });
  }

  /** Ends every session of every user; returns how many. */
  async revokeEveryone(transaction?: Transaction<MainDB>): Promise<number> {
    return this.repo.deleteAll(transaction);
  }

  /** Live sessions of the user, with their addresses decrypted. */
  async list(userId: string, profile: Pick<Profile, 'userId' | 'dataKey'>): Promise<Array<SessionRow & { ip: string | null; userAgent: string | null }>> {
    const now = this.clock.now();
    const rows = await this.repo.listForUser(userId);
    return rows
      .filter((row) => !isExpired(row, now))
      .map((row) => ({ ...row, ...this.describe(row, profile) }));
  }

  describe(row: Pick<SessionRow, 'ip_enc' | 'user_agent_enc'>, profile: Pick<Profile, 'userId' | 'dataKey'>): { ip: string | null; userAgent: string | null } {
    return {
      ip: this.pii.openForUser(profile, row.ip_enc, 'session-ip'),
      userAgent: this.pii.openForUser(profile, row.user_agent_enc, 'session-ua'),
    };
  }

  async sweepExpired(): Promise<number> {
    return this.repo.deleteExpired(this.clock.now());
  }

  /** When the session ends if left idle from now, bounded by its absolute expiry. */
  effectiveExpiry(session: Pick<SessionRow, 'last_seen_at' | 'idle_timeout_ms' | 'expires_at'>): number {
    return Math.min(session.expires_at, session.last_seen_at + session.idle_timeout_ms);
  }
}

export function isExpired(session: Pick<SessionRow, 'last_seen_at' | 'idle_timeout_ms' | 'expires_at'>, now: number): boolean {
  return now >= session.expires_at || now - session.last_seen_at >= session.idle_timeout_ms;
}

/** The `session.revoked` event of one of a user's sessions, ended for `reason`. */
function sessionRevoked(userId: string, publicId: string, reason: SessionEndReason | 'user', origin: EventOrigin): SecurityEventInput {
  return {
    action: 'session.revoked', actor: { type: 'user', id: userId }, target: { type: 'session', id: publicId },
    origin, outcome: 'success', details: { reason },
  };
}
