import type { Clock } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { ActiveSession, SessionService } from '../../sessions/session-service.js';
import type { RequestMeta } from './request-meta.js';

/** API.md: sensitive actions need a re-authentication within the last 10 minutes on the same session. */
export const REAUTH_WINDOW_MS = 10 * 60_000;

export function hasRecentReauth(session: Pick<ActiveSession, 'reauth_at'>, now: number): boolean {
  return session.reauth_at !== null && now - session.reauth_at < REAUTH_WINDOW_MS && session.reauth_at <= now;
}

/** A login alone does not count: a cookie stolen right after login must not be enough to remove a factor. */
export function assertRecentReauth(session: Pick<ActiveSession, 'reauth_at'>, clock: Clock): void {
  if (!hasRecentReauth(session, clock.now())) {
    throw new RampartError('reauth_required', { publicDetail: 'Confirm your password or second factor (POST /v1/me/reauth) and retry.' });
  }
}

/**
 * For actions API.md does not mark step-up but that hand out lasting power (an API token that
 * can change an org, a webhook receiving the org's events): the session was signed in or
 * re-authenticated within the step-up window. A cookie stolen from an older session cannot
 * do them without the password; a login just made can (the contract's flows do exactly that).
 */
export function assertRecentAuthentication(session: Pick<ActiveSession, 'reauth_at' | 'created_at'>, clock: Clock): void {
  const now = clock.now();
  const signedInRecently = now - session.created_at < REAUTH_WINDOW_MS && session.created_at <= now;
  if (!signedInRecently && !hasRecentReauth(session, now)) {
    throw new RampartError('reauth_required', { publicDetail: 'This session signed in more than 10 minutes ago: confirm your password or second factor (POST /v1/me/reauth) and retry.' });
  }
}

/** Checks one proof of the user's identity; the MFA feature registers `totp`. */
export type ReauthVerifier = (userId: string, value: string, meta: RequestMeta) => Promise<boolean>;

/**
 * Step-up: `POST /v1/me/reauth` proves the user again and marks the session as
 * recently re-authenticated. The session gets a new secret at the same time
 * (ASVS V7.2.4: a new token at every re-authentication).
 */
export class StepUpService {
  readonly #verifiers = new Map<string, ReauthVerifier>();

  /**
   * `password` checks the user's password under the login's brute-force guard
   * (`LoginService.verifyPasswordOf`): step-up is no side door for guessing it.
   */
  constructor(
    password: ReauthVerifier,
    private readonly sessions: SessionService,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {
    this.#verifiers.set('password', password);
  }

  registerVerifier(method: string, verifier: ReauthVerifier): void {
    this.#verifiers.set(method, verifier);
  }

  /** Returns the session's new secret. Throws invalid_credentials (password) or invalid_mfa (factor) on failure. */
  async reauthenticate(session: ActiveSession, method: string, value: string, meta: RequestMeta): Promise<{ secret: string; idHash: string }> {
    const verifier = this.#verifiers.get(method);
    if (!verifier) throw new RampartError('invalid_request', { publicDetail: `Re-authentication with ${method} is not available.` });
    const valid = await verifier(session.user_id, value, meta);
    const base = { actor: { type: 'user' as const, id: session.user_id }, target: { type: 'session', id: session.public_id }, origin: meta };
    if (!valid) {
      await this.events.record({ ...base, action: 'reauth.failed', outcome: 'failure', details: { method } });
      throw new RampartError(method === 'password' ? 'invalid_credentials' : 'invalid_mfa');
    }
    const rotated = await this.sessions.rotate(session.id_hash, { reauth_at: this.clock.now() });
    if (!rotated) throw new RampartError('unauthenticated');
    await this.events.record({ ...base, action: 'reauth.succeeded', outcome: 'success', details: { method } });
    return rotated;
  }
}
