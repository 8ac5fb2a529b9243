import type { MfaProof, MfaService } from '../mfa/mfa-service.js';
import type { UserRow } from '../../store/repositories/users.js';
import type { CompletedLogin, LoginGate, LoginService } from './login.js';
import type { PasswordExpiryFlow } from './password-expiry.js';
import type { RequestMeta } from './request-meta.js';

/**
 * The MFA login gate: after a correct password, a user with a factor gets
 * `{mfaRequired, mfaToken, methods}` instead of a session; a user an org
 * requires to enroll gets an enrollment-only session during the grace period
 * (`enrollmentRequired: true` in the login body) and `403
 * mfa_enrollment_required` after it.
 */
export function mfaLoginGate(mfa: MfaService): LoginGate {
  return {
    name: 'mfa',
    async check(input) {
      const step = await mfa.startLogin(input);
      if (step.kind === 'challenge') return step.body;
      if (step.enrollBefore !== null) {
        input.responseExtras['enrollmentRequired'] = true;
        input.responseExtras['enrollBefore'] = new Date(step.enrollBefore).toISOString();
      }
      return null;
    },
  };
}

/**
 * Re-checks, at the second step, what the password step's gates checked about
 * the request (the address may differ): throws to refuse.
 */
export type MfaStepAdmission = (user: UserRow, meta: RequestMeta) => Promise<void>;

/** Commits a new password an MFA step held (the expired-password flow). */
export type HeldPasswords = Pick<PasswordExpiryFlow, 'prepareHeldCommit' | 'heldCommitted'>;

/**
 * `POST /v1/login/mfa`: proves the second factor, consumes the mfaToken (and
 * commits the new password it held, if any), makes the session.
 */
export class MfaLoginFlow {
  constructor(
    private readonly mfa: MfaService,
    private readonly login: LoginService,
    private readonly heldPasswords: HeldPasswords,
    private readonly admissions: readonly MfaStepAdmission[] = [],
  ) {}

  async complete(mfaToken: string, proof: MfaProof, meta: RequestMeta): Promise<CompletedLogin> {
    const verified = await this.mfa.verifyLoginFactor(mfaToken, proof, meta, {
      admit: async (user) => {
        for (const admit of this.admissions) await admit(user, meta);
      },
      commitHeldPassword: (user, passwordHash) => this.heldPasswords.prepareHeldCommit(user, passwordHash, meta),
    });
    if (verified.passwordChanged) this.heldPasswords.heldCommitted(verified.profile);
    return this.login.completeLogin({
      user: verified.user,
      profile: verified.profile,
      meta,
      mfaVerified: verified.mfaVerified,
      mfaMethod: verified.method,
    });
  }
}
