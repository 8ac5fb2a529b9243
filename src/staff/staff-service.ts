import type { Kysely } from 'kysely';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import { type Clock, iso } from '../clock.js';
import { RampartError } from '../errors.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { PiiService } from '../pii/pii-service.js';
import type { ActiveSession, SessionService } from '../sessions/session-service.js';
import type { StaffRepository } from '../store/repositories/staff.js';
import type { UserRepository, UserRow } from '../store/repositories/users.js';
import type { MainDB } from '../store/schema.js';
import type { AccountService } from '../users/account-service.js';
import {
  DEFAULT_ASSUMPTION_MINUTES, isStaffRole, MAX_ASSUMPTION_MINUTES, type StaffAction, type StaffConflicts, type StaffRole, staffRoleAllows,
} from './staff-roles.js';

/** What a staff route knows once `assertActing` let it through. */
export interface StaffActing {
  userId: string;
  role: StaffRole;
  reason: string;
  sessionPublicId: string;
}

export interface StaffUserView {
  id: string;
  email: string;
  name: string | null;
  status: string;
  emailVerified: boolean;
  mfaEnabled: boolean;
  createdAt: string;
}

/** The parts of other features staff actions call (MFA reset: issue 4's `services.mfa`). */
export interface StaffDependencies {
  db: Kysely<MainDB>;
  repo: StaffRepository;
  users: UserRepository;
  pii: PiiService;
  sessions: SessionService;
  accounts: AccountService;
  events: SecurityEvents;
  clock: Clock;
  conflicts: StaffConflicts;
  resetMfa: (userId: string, actor: { type: 'staff'; id: string }, meta: RequestMeta | null) => Promise<void>;
}

/**
 * Staff separation of roles. Roles are granted from the command line and are
 * dormant: a session must assume one (MFA-verified session, fresh step-up, a
 * reason; at most 60 minutes; one at a time, replacing any earlier one) before
 * any staff route works, and every assumption and staff action is audited
 * with its reason. Staff accounts must have a second factor.
 */
export class StaffService {
  constructor(private readonly d: StaffDependencies) {}

  // ---- grants (CLI) ----------------------------------------------------------

  async grant(email: string, role: string, via: string): Promise<{ userId: string; granted: boolean }> {
    const user = await this.#userByEmail(email);
    const userId = user.id;
    if (!isStaffRole(role)) throw new RampartError('invalid_request', { detail: `unknown staff role "${role}"`, publicDetail: `unknown staff role "${role}"` });
    // A staff role on an account without a second factor would be one phished password away.
    if (user.mfa_enabled !== 1) throw new RampartError('staff_mfa_required', { detail: 'the account has no second factor; it must enroll one first' });
    const now = this.d.clock.now();
    const granted = await this.d.db.transaction().execute(async (trx) => {
      // Lock order (ARCHITECTURE.md): the user's row before the user's other rows and the audit chain.
      await this.d.users.holdRow(userId, trx);
      const inserted = await this.d.repo.grant({ user_id: userId, role, granted_at: now, granted_by: via }, trx);
      if (inserted) {
        await this.d.events.record({
          action: 'staff_role.granted', actor: { type: 'system', id: null }, target: { type: 'user', id: userId }, outcome: 'success', details: { role, via },
        }, trx);
      }
      return inserted;
    });
    return { userId, granted };
  }

  /** Revokes a grant; a session that assumed the role loses it at once. */
  async revoke(email: string, role: string, via: string): Promise<{ userId: string; revoked: boolean }> {
    const { id: userId } = await this.#userByEmail(email);
    if (!isStaffRole(role)) throw new RampartError('invalid_request', { detail: `unknown staff role "${role}"`, publicDetail: `unknown staff role "${role}"` });
    const revoked = await this.d.db.transaction().execute(async (trx) => {
      await this.d.users.holdRow(userId, trx);
      const removed = await this.d.repo.revoke(userId, role, trx);
      const ended = await this.d.repo.deleteAssumptionsOfRole(userId, role, trx);
      if (removed) {
        await this.d.events.record({
          action: 'staff_role.revoked', actor: { type: 'system', id: null }, target: { type: 'user', id: userId }, outcome: 'success',
          details: { role, via, endedAssumptions: ended },
        }, trx);
      }
      return removed;
    });
    return { userId, revoked };
  }

  async rolesOf(userId: string): Promise<string[]> {
    return this.d.repo.rolesOf(userId);
  }

  // ---- assuming ----------------------------------------------------------------

  /**
   * Assumes a granted role for this session. The caller has checked the step-up
   * (HTTP layer); this checks the grant and the MFA state. Any role this session
   * held before ends, and so does any role held in the user's other sessions
   * that conflicts with it (STAFF_CONFLICTING_ROLES; by default every role).
   * The session's secret rotates: this is a privilege change.
   */
  async assume(session: ActiveSession, input: { role: string; reason: string; minutes?: number }, meta: RequestMeta): Promise<{ role: StaffRole; expiresAt: string; secret: string }> {
    const { role, reason } = input;
    const minutes = input.minutes ?? DEFAULT_ASSUMPTION_MINUTES;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_ASSUMPTION_MINUTES) {
      throw new RampartError('invalid_request', { publicDetail: `minutes must be 1 to ${MAX_ASSUMPTION_MINUTES}` });
    }
    const userId = session.user_id;
    const base = { actor: { type: 'user' as const, id: userId }, target: { type: 'user', id: userId }, origin: meta };
    const notGranted = async (): Promise<never> => {
      await this.d.events.record({ ...base, action: 'access.denied', outcome: 'denied', details: { reason: 'staff_role_not_granted', role, staffReason: reason } });
      throw new RampartError('forbidden', { publicDetail: 'You do not hold this staff role.' });
    };
    if (!isStaffRole(role) || !(await this.d.repo.holds(userId, role))) return notGranted();
    if (session.mfa_verified !== 1 || session.user_mfa_enabled !== 1) {
      await this.d.events.record({ ...base, action: 'access.denied', outcome: 'denied', details: { reason: 'staff_mfa_required', role, staffReason: reason } });
      throw new RampartError('staff_mfa_required');
    }
    const now = this.d.clock.now();
    const expiresAt = now + minutes * 60_000;
    const result = await this.d.db.transaction().execute(async (trx) => {
      await this.d.users.holdRow(userId, trx);
      // The grant again, in the transaction that stores the assumption: one revoked since the
      // check above must not be assumed. On PostgreSQL the row stays share-locked until commit,
      // so a revocation racing this one waits and then ends the assumption it finds.
      if (!(await this.d.repo.holdGrant(userId, role, trx))) return null;
      const previous = await this.d.repo.deleteAssumption(session.public_id, trx);
      const ended: string[] = previous ? [previous.role] : [];
      for (const other of await this.d.repo.assumptionsOfUser(userId, trx)) {
        if (isStaffRole(other.role) && this.d.conflicts.conflict(other.role, role)) {
          await this.d.repo.deleteAssumption(other.session_public_id, trx);
          ended.push(other.role);
        }
      }
      await this.d.repo.insertAssumption({ session_public_id: session.public_id, user_id: userId, role, reason, assumed_at: now, expires_at: expiresAt }, trx);
      const rotated = await this.d.sessions.rotate(session.id_hash, {}, trx);
      if (!rotated) throw new RampartError('unauthenticated');
      await this.d.events.record({
        ...base, action: 'staff_role.assumed', outcome: 'success', target: { type: 'session', id: session.public_id },
        details: { role, reason, minutes, expiresAt: iso(expiresAt), replaced: ended },
      }, trx);
      return rotated;
    });
    // The grant went between the two checks: refused as if it had never been held.
    if (result === null) return notGranted();
    return { role, expiresAt: iso(expiresAt), secret: result.secret };
  }

  /** Drops the session's assumed role (no-op when none). */
  async release(session: ActiveSession, meta: RequestMeta): Promise<void> {
    await this.d.db.transaction().execute(async (trx) => {
      await this.d.users.holdRow(session.user_id, trx);
      const previous = await this.d.repo.deleteAssumption(session.public_id, trx);
      if (!previous) return;
      await this.d.events.record({
        action: 'staff_role.released', actor: { type: 'user', id: session.user_id }, target: { type: 'session', id: session.public_id },
        origin: meta, outcome: 'success', details: { role: previous.role, reason: previous.reason },
      }, trx);
    });
  }

  /**
   * THE check of every staff route: this session assumed a role that has not
   * expired, is still granted, on an MFA-verified session, and the role's row in
   * the table allows the action. Anything else is `forbidden` and `access.denied`.
   */
  async assertActing(session: ActiveSession, action: StaffAction, meta: RequestMeta): Promise<StaffActing> {
    const assumption = await this.d.repo.findAssumption(session.public_id);
    const now = this.d.clock.now();
    let refusal: string | null = null;
    if (!assumption || assumption.expires_at <= now) refusal = 'no_assumed_role';
    else if (!isStaffRole(assumption.role) || !(await this.d.repo.holds(session.user_id, assumption.role))) refusal = 'staff_role_not_granted';
    else if (session.mfa_verified !== 1 || session.user_mfa_enabled !== 1) refusal = 'staff_mfa_required';
    else if (!staffRoleAllows(assumption.role, action)) refusal = 'role_lacks_action';
    if (refusal !== null || !assumption) {
      await this.d.events.record({
        action: 'access.denied', actor: { type: 'user', id: session.user_id }, target: { type: 'session', id: session.public_id },
        origin: meta, outcome: 'denied', details: { reason: refusal, action, role: assumption?.role ?? null },
      });
      throw new RampartError('forbidden', {
        publicDetail: refusal === 'no_assumed_role' ? 'Assume a staff role first (POST /v1/admin/assume).' : 'Your assumed staff role does not allow this.',
      });
    }
    return { userId: session.user_id, role: assumption.role as StaffRole, reason: assumption.reason, sessionPublicId: session.public_id };
  }

  // ---- staff actions -----------------------------------------------------------

  async findUsersByEmail(acting: StaffActing, email: string, meta: RequestMeta): Promise<StaffUserView[]> {
    const userId = await this.d.pii.findUserIdByEmail(email);
    const user = userId ? await this.d.users.findById(userId) : undefined;
    const profile = user ? await this.d.pii.getProfile(user.id) : null;
    await this.#recordAction(acting, 'users.read', user ? { type: 'user', id: user.id } : null, meta, { found: Boolean(user && profile) });
    if (!user || !profile) return [];
    return [{
      id: user.id, email: profile.email, name: profile.name, status: user.status, emailVerified: user.email_verified === 1,
      mfaEnabled: user.mfa_enabled === 1, createdAt: iso(user.created_at),
    }];
  }

  async lockUser(acting: StaffActing, userId: string, meta: RequestMeta): Promise<void> {
    await this.d.accounts.lock(userId, staffActor(acting), meta, acting.reason);
    await this.#recordAction(acting, 'users.lock', { type: 'user', id: userId }, meta);
  }

  async unlockUser(acting: StaffActing, userId: string, meta: RequestMeta): Promise<void> {
    await this.d.accounts.unlock(userId, staffActor(acting), meta, acting.reason);
    await this.#recordAction(acting, 'users.unlock', { type: 'user', id: userId }, meta);
  }

  async resetMfa(acting: StaffActing, userId: string, meta: RequestMeta): Promise<void> {
    await this.d.resetMfa(userId, staffActor(acting), meta);
    await this.#recordAction(acting, 'users.reset_mfa', { type: 'user', id: userId }, meta);
  }

  /** Records a platform audit read (the read itself, with its reason, lands in the log it reads). */
  async recordAuditRead(acting: StaffActing, meta: RequestMeta, details: Record<string, unknown>): Promise<void> {
    await this.#recordAction(acting, 'audit.read', null, meta, details);
  }

  async #recordAction(acting: StaffActing, action: StaffAction, target: { type: string; id: string } | null, meta: RequestMeta, details: Record<string, unknown> = {}): Promise<void> {
    await this.d.events.record({
      action: 'staff_action.performed', actor: staffActor(acting), target, origin: meta, outcome: 'success',
      details: { action, staffRole: acting.role, reason: acting.reason, ...details },
    });
  }

  async #userByEmail(email: string): Promise<UserRow> {
    const userId = await this.d.pii.findUserIdByEmail(email);
    const user = userId ? await this.d.users.findById(userId) : undefined;
    if (!user) throw new RampartError('not_found', { detail: 'no account with that email' });
    return user;
  }
}

function staffActor(acting: StaffActing): { type: 'staff'; id: string } {
  return { type: 'staff', id: acting.userId };
}
