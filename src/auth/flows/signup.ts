import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import { randomId } from '../../crypto/random.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { PiiService } from '../../pii/pii-service.js';
import type { SessionService } from '../../sessions/session-service.js';
import type { UserRepository, UserRow } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import { isUniqueViolation } from '../../store/errors.js';
import { claimAddress } from '../../users/orphan-profiles.js';
import { toPublicUser } from '../../users/public-user.js';
import { graceEndsAt } from '../mfa/enforcement.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { PasswordRules } from '../password/password-rules.js';
import type { CompletedLogin } from './login.js';
import type { RequestMeta } from './request-meta.js';

export interface SignupInput {
  email: string;
  password: string;
  name: string | null;
}

/**
 * Creates an account and its first session. The two stores cannot share a
 * transaction, so the order is chosen for crash safety: the encrypted profile
 * is written first, then the account, session and event in one main-store
 * transaction. A crash in between leaves only an orphan profile with no
 * account, which signs in nobody and is replaced by the next signup for that
 * address.
 */
export class SignupService {
  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    private readonly hasher: PasswordHasher,
    private readonly sessions: SessionService,
    private readonly rules: PasswordRules,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {}

  async signup(input: SignupInput, meta: RequestMeta): Promise<CompletedLogin> {
    // The same rules as every other way of setting a password: policy, context words, common lists, breach check.
    const policy = await this.rules.assertAcceptable(input.password, { userId: null, email: input.email, name: input.name });
    // A profile left without an account by a crash must not hold the address forever.
    if (await claimAddress(this.pii, this.users, this.clock.now(), input.email) !== 'free') throw new RampartError('email_taken');
    const passwordHash = await this.hasher.hash(input.password);

    const userId = randomId('usr');
    let profile;
    try {
      profile = await this.pii.createProfile(userId, input.email, input.name);
    } catch (error) {
      if (isUniqueViolation(error)) throw new RampartError('email_taken');
      throw error;
    }
    const now = this.clock.now();
    const user: UserRow = {
      id: userId, status: 'active', password_hash: passwordHash, password_changed_at: now,
      email_verified: 0, mfa_enabled: 0, created_at: now, updated_at: now,
    };
    let issued;
    try {
      issued = await this.db.transaction().execute(async (trx) => {
        await this.users.insert(user, trx);
        const created = await this.sessions.create({
          userId, profile, ip: meta.ip, userAgent: meta.userAgent, mfaVerified: false, mfaMethod: null, limits: policy.session,
        }, trx);
        await this.events.record({
          action: 'user.created', actor: { type: 'user', id: userId }, target: { type: 'user', id: userId },
          origin: meta, outcome: 'success', details: { via: 'signup' },
        }, trx);
        await this.events.record({
          action: 'session.created', actor: { type: 'user', id: userId }, target: { type: 'session', id: created.row.public_id },
          origin: meta, outcome: 'success', details: { via: 'signup' },
        }, trx);
        return created;
      });
    } catch (error) {
      await this.pii.deleteProfile(userId).catch(() => undefined);
      throw error;
    }
    // MFA_REQUIRED_FOR_ALL: the new account starts in an enrollment-only session, as a login in the grace period would.
    const enrollBefore = graceEndsAt({ mfa: policy.mfa, mfaRequiredSince: now }, null);
    return {
      kind: 'session',
      user: toPublicUser(user, profile),
      issued,
      csrfToken: await this.sessions.csrfToken(issued.row.public_id),
      profile,
      ...(enrollBefore === null ? {} : { responseExtras: { enrollmentRequired: true, enrollBefore: new Date(enrollBefore).toISOString() } }),
    };
  }
}
