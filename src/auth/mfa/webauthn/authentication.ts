import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  generateAuthenticationOptions,
  type PublicKeyCredentialRequestOptionsJSON,
  type Uint8Array_,
  verifyAuthenticationResponse,
} from '@simplewebauthn/server';
import { type ChallengeCheck, type RelyingParty, WEBAUTHN_TIMEOUT_MS } from './relying-party.js';

/** Request options for navigator.credentials.get(), limited to the user's own credentials. */
export async function authenticationOptions(
  rp: RelyingParty,
  allow: ReadonlyArray<{ id: string; transports: AuthenticatorTransportFuture[] | undefined }>,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({
    rpID: rp.id,
    timeout: WEBAUTHN_TIMEOUT_MS,
    userVerification: 'required',
    allowCredentials: allow.map((credential) => ({ id: credential.id, ...(credential.transports ? { transports: credential.transports } : {}) })),
  });
}

export interface StoredCredential {
  credentialId: string;
  publicKey: Uint8Array_;
  counter: number;
  transports: AuthenticatorTransportFuture[] | undefined;
}

export type AuthenticationOutcome = { ok: true; newCounter: number } | { ok: false; reason: string };

/**
 * Verifies an assertion: challenge (consumed by `checkChallenge`), origin, RP ID
 * hash, user presence and verification, the signature over authenticatorData ‖
 * SHA-256(clientDataJSON), and the signature counter (a counter that does not
 * grow, when either side is non-zero, betrays a cloned authenticator: WebAuthn
 * §6.1.1). Never throws for a bad response.
 */
export async function verifyAuthentication(
  rp: RelyingParty,
  response: AuthenticationResponseJSON,
  credential: StoredCredential,
  checkChallenge: ChallengeCheck,
): Promise<AuthenticationOutcome> {
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: checkChallenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      expectedType: 'webauthn.get',
      requireUserVerification: true,
      credential: {
        id: credential.credentialId,
        publicKey: credential.publicKey,
        counter: credential.counter,
        ...(credential.transports ? { transports: credential.transports } : {}),
      },
    });
    if (!result.verified) return { ok: false, reason: 'not_verified' };
    return { ok: true, newCounter: result.authenticationInfo.newCounter };
  } catch (error) {
    const message = error instanceof Error ? error.message : 'invalid';
    return { ok: false, reason: /counter/i.test(message) ? 'counter_regression' : message.slice(0, 200) };
  }
}
