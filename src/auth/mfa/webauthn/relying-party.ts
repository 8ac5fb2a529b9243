/**
 * The relying party, derived from PUBLIC_URL (API.md): the RP ID is its host
 * name and the only expected origin is the URL's origin. Every verification
 * pins both, and requires user verification (STYLE.md "pin what you verify").
 */
export interface RelyingParty {
  id: string;
  name: string;
  origin: string;
}

export function relyingPartyFor(publicUrl: string, name: string): RelyingParty {
  const url = new URL(publicUrl);
  return { id: url.hostname, name, origin: url.origin };
}

/**
 * How long a ceremony may take. WebAuthn Level 3 §5.4 recommends 300-600 s when
 * user verification is required; the challenge expires with it.
 */
export const WEBAUTHN_TIMEOUT_MS = 5 * 60_000;

/** Algorithms accepted for new credentials: EdDSA, ES256, RS256 (the library's defaults). */
export const WEBAUTHN_ALGORITHMS = [-8, -7, -257];

export type ChallengeCheck = (challenge: string) => Promise<boolean>;
