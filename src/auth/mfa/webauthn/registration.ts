import {
  generateRegistrationOptions,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type RegistrationResponseJSON,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { type ChallengeCheck, type RelyingParty, WEBAUTHN_ALGORITHMS, WEBAUTHN_TIMEOUT_MS } from './relying-party.js';

export interface RegistrationUser {
  /** Our opaque user id (random, no personal data): the WebAuthn user handle. */
  id: string;
  /** Shown by the authenticator to tell accounts apart: the user's email. */
  name: string;
  displayName: string;
}

/** Creation options for navigator.credentials.create(); user verification required, no attestation asked. */
export async function registrationOptions(
  rp: RelyingParty,
  user: RegistrationUser,
  exclude: ReadonlyArray<{ id: string; transports: AuthenticatorTransportFuture[] | undefined }>,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userID: new TextEncoder().encode(user.id),
    userName: user.name,
    userDisplayName: user.displayName,
    timeout: WEBAUTHN_TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials: exclude.map((credential) => ({ id: credential.id, ...(credential.transports ? { transports: credential.transports } : {}) })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    supportedAlgorithmIDs: WEBAUTHN_ALGORITHMS,
  });
}

export interface RegisteredCredential {
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: AuthenticatorTransportFuture[] | undefined;
  deviceType: string;
  backedUp: boolean;
}

export type RegistrationOutcome = { ok: true; credential: RegisteredCredential } | { ok: false; reason: string };

/**
 * Verifies an attestation: challenge (through `checkChallenge`, which consumes
 * it), origin, RP ID hash, user presence and verification, and the attestation
 * statement. Never throws for a bad response.
 */
export async function verifyRegistration(rp: RelyingParty, response: RegistrationResponseJSON, checkChallenge: ChallengeCheck): Promise<RegistrationOutcome> {
  try {
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: checkChallenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      expectedType: 'webauthn.create',
      requireUserPresence: true,
      requireUserVerification: true,
      supportedAlgorithmIDs: WEBAUTHN_ALGORITHMS,
    });
    if (!result.verified) return { ok: false, reason: 'not_verified' };
    const info = result.registrationInfo;
    return {
      ok: true,
      credential: {
        credentialId: info.credential.id,
        publicKey: info.credential.publicKey,
        counter: info.credential.counter,
        transports: info.credential.transports ?? response.response.transports,
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
      },
    };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message.slice(0, 200) : 'invalid' };
  }
}
