import type { Kysely } from 'kysely';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { PiiService } from '../../pii/pii-service.js';
import type { ActiveSession, SessionService } from '../../sessions/session-service.js';
import type { UserRepository } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import type { PasswordService } from '../password/password-service.js';
import type { LoginService } from './login.js';
import type { RequestMeta } from './request-meta.js';

/**
 * `POST /v1/me/password`: the signed-in user changes their password with the
 * current one (ASVS V6.2.3). In one transaction: the new hash and history,
 * every other session and session-derived credential revoked (V7.4.3), and
 * the current session given a new secret (V7.2.4), so a copy of the old
 * cookie is worthless afterwards.
 */
export class PasswordChangeFlow {
  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    /** Checks the current password under the login's brute-force guard (ASVS V6.3.1). */
    private readonly login: Pick<LoginService, 'verifyPasswordOf'>,
    private readonly sessions: SessionService,
    private readonly passwords: PasswordService,
    private readonly events: SecurityEvents,
  ) {}

  /** Returns the current session's new secret. */
  async change(session: ActiveSession, currentPassword: string, newPassword: string, meta: RequestMeta): Promise<{ secret: string; idHash: string }> {
    const user = await this.users.findById(session.user_id);
    const profile = user ? await this.pii.getProfile(user.id) : null;
    if (!user || !profile) throw new RampartError('unauthenticated');
    if (!(await this.login.verifyPasswordOf(user, profile.email, currentPassword, meta))) {
      await this.events.record({
        action: 'password.change_failed', actor: { type: 'user', id: user.id }, target: { type: 'user', id: user.id },
        origin: meta, outcome: 'failure', details: { reason: 'bad_current_password' },
      });
      throw new RampartError('invalid_credentials', { publicDetail: 'The current password is not correct.' });
    }
    const prepared = await this.passwords.prepare(user, profile, newPassword, { refuseCurrent: true });
    const rotated = await this.db.transaction().execute(async (trx) => {
      await this.passwords.apply(trx, prepared, {
        reason: 'password_changed', via: 'change', actor: { type: 'user', id: user.id }, meta, exceptSessionIdHash: session.id_hash,
      });
      const renewed = await this.sessions.rotate(session.id_hash, {}, trx);
      // The session ended while the hash was computed: undo everything.
      if (!renewed) throw new RampartError('unauthenticated');
      await this.events.record({
        action: 'session.rotated', actor: { type: 'user', id: user.id }, target: { type: 'session', id: session.public_id },
        origin: meta, outcome: 'success', details: { reason: 'password_changed' },
      }, trx);
      return renewed;
    });
    this.passwords.notifyChanged(profile, 'change');
    return rotated;
  }
}
