import { RampartError } from '../errors.js';
import type { Services } from '../services.js';
import type { AuthGuard } from './auth.js';

/**
 * Org MFA enforcement on every session request: when an org the user belongs to
 * (or MFA_REQUIRED_FOR_ALL) requires a second factor and this session has not proved one that counts,
 * only routes marked `allowDuringMfaEnrollment` (reading the session and the
 * factor list, enrolling, step-up, logout) answer; every other route says
 * `403 mfa_enrollment_required`. Bearer credentials (API tokens, access JWTs)
 * cannot enroll: they keep working during the grace period and are refused
 * with the same code once it is over, as the owner's login is.
 */
export function mfaEnrollmentGuard(services: Services): AuthGuard {
  return async (request, auth) => {
    if (auth.kind !== 'session') {
      // A bearer credential cannot enroll a factor, so the grace period leaves it alone;
      // once the grace is over its owner can no longer sign in, and their tokens stop too:
      // an API token must not outlive the requirement the login is held to.
      if (await services.mfa.isPastEnrollmentDeadline(auth.userId)) {
        throw new RampartError('mfa_enrollment_required', {
          publicDetail: 'A second factor is required of the owner of this credential and the grace period to enroll one is over; it works again once they have one (or an administrator resets them).',
        });
      }
      return;
    }
    if (request.routeOptions.config?.allowDuringMfaEnrollment === true) return;
    if (await services.mfa.sessionSatisfiesPolicy(auth.session)) return;
    throw new RampartError('mfa_enrollment_required', {
      publicDetail: 'A second factor is required of this account (by an organization you belong to, or by this service for every account): enroll one (or sign in again with it) to continue.',
    });
  };
}
