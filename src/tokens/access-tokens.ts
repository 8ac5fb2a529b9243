import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload, type JWSHeaderParameters } from 'jose';
import type { Clock } from '../clock.js';
import { RampartError } from '../errors.js';
import { randomToken } from '../crypto/random.js';
import type { ActiveSession, SessionService } from '../sessions/session-service.js';
import type { ApiTokenService } from './api-token-service.js';
import { SIGNING_ALGORITHM, type SigningKeyService } from './signing-keys.js';

/** RFC 9068 §2.1: the `typ` header of a JWT access token. Pinned on verification (ASVS V9.2.2). */
export const ACCESS_TOKEN_TYP = 'at+jwt';
/** API.md: access JWTs live at most 15 minutes. */
export const MAX_ACCESS_TOKEN_TTL_SECONDS = 900;
/** Header members that name a key source. We never fetch or trust one (ASVS V9.1.3). */
const KEY_SOURCE_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;
/** A compact JWS: three base64url parts. */
export const COMPACT_JWS = /^[A-Za-z0-9_-]{2,2048}\.[A-Za-z0-9_-]{2,4096}\.[A-Za-z0-9_-]{0,1024}$/;

/** Claims of a Rampart access JWT: ids and scopes only, no personal data. */
export interface AccessClaims {
  iss: string;
  aud: string;
  sub: string;
  /** The session it was minted from (public id), or… */
  sid?: string;
  /** …the API token it was minted from (public id). */
  tid?: string;
  /** The org the source token is bound to. */
  org_id?: string;
  /** Space-separated scopes (RFC 8693 §4.2). */
  scope: string;
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
}

export interface AccessTokenSource {
  userId: string;
  sessionPublicId?: string;
  tokenId?: string;
  orgId?: string | null;
  scopes: readonly string[];
  /** The source credential's own end (epoch ms); the JWT never outlives it. null: none. */
  notAfter: number | null;
}

export interface AccessTokenSettings {
  ttlSeconds: number;
  /** The issuer: services.publicUrl, known once the server listens. */
  issuer: () => string;
  /** The audience: ACCESS_TOKEN_AUDIENCE, or `<issuer>/v1`. */
  audience: () => string;
}

/** A verified access JWT whose source credential is still live. */
export interface LiveAccessToken {
  claims: AccessClaims;
  scopes: string[];
  /** The live session it was minted from (`sid`), whose proofs (sign-in, step-up) it carries; null when minted from an API token. */
  session: ActiveSession | null;
}

/**
 * Short-lived access JWTs (≤ 15 min) for apps: EdDSA via jose, `kid` naming a
 * key in the JWKS, `typ: at+jwt`. Verification pins the algorithm, issuer,
 * audience and type, takes keys only from our own key table, and then checks
 * that the session or API token it came from still lives, so logout, lock and
 * revocation end its JWTs at once on this server (offline verifiers accept it
 * until `exp` at most).
 */
export class AccessTokenService {
  constructor(
    private readonly keys: SigningKeyService,
    private readonly sessions: SessionService,
    private readonly apiTokens: ApiTokenService,
    private readonly clock: Clock,
    private readonly settings: AccessTokenSettings,
  ) {
    if (settings.ttlSeconds > MAX_ACCESS_TOKEN_TTL_SECONDS || settings.ttlSeconds < 1) throw new TypeError('access token TTL must be 1..900 seconds');
  }

  get issuer(): string {
    return this.settings.issuer();
  }

  get audience(): string {
    return this.settings.audience();
  }

  async issue(source: AccessTokenSource): Promise<{ accessToken: string; expiresIn: number; claims: AccessClaims }> {
    const nowSeconds = Math.floor(this.clock.now() / 1000);
    let exp = nowSeconds + this.settings.ttlSeconds;
    if (source.notAfter !== null) exp = Math.min(exp, Math.floor(source.notAfter / 1000));
    // The source ends within the second: nothing worth minting.
    if (exp <= nowSeconds) throw new RampartError('unauthenticated', { publicDetail: 'The credential being exchanged has expired.' });
    const claims: AccessClaims = {
      iss: this.issuer,
      aud: this.audience,
      sub: source.userId,
      ...(source.sessionPublicId ? { sid: source.sessionPublicId } : {}),
      ...(source.tokenId ? { tid: source.tokenId } : {}),
      ...(source.orgId ? { org_id: source.orgId } : {}),
      scope: source.scopes.join(' '),
      iat: nowSeconds,
      exp,
      jti: randomToken(16),
    };
    const { kid, privateKey } = await this.keys.signingKey();
    const accessToken = await new SignJWT(claims as unknown as JWTPayload)
      .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid, typ: ACCESS_TOKEN_TYP })
      .sign(privateKey);
    return { accessToken, expiresIn: exp - nowSeconds, claims };
  }

  /** The verified claims, or null for anything that is not a valid, unexpired access JWT of ours. */
  async verify(token: string): Promise<AccessClaims | null> {
    if (!COMPACT_JWS.test(token)) return null;
    try {
      const { payload } = await jwtVerify(token, (header: JWSHeaderParameters) => this.#keyFor(header), {
        algorithms: [SIGNING_ALGORITHM],
        issuer: this.issuer,
        audience: this.audience,
        typ: ACCESS_TOKEN_TYP,
        currentDate: new Date(this.clock.now()),
        maxTokenAge: this.settings.ttlSeconds,
        requiredClaims: ['sub', 'exp', 'iat', 'jti', 'scope'],
      });
      if (typeof payload.scope !== 'string' || typeof payload.sub !== 'string') return null;
      if ((payload.sid === undefined) === (payload.tid === undefined)) return null;
      return payload as unknown as AccessClaims;
    } catch (error) {
      if (error instanceof joseErrors.JOSEError || error instanceof KeySourceRefused) return null;
      throw error;
    }
  }

  /** Verified, and its session or API token still lives (same owner). */
  async authenticate(token: string): Promise<LiveAccessToken | null> {
    const claims = await this.verify(token);
    if (!claims) return null;
    let session: ActiveSession | null = null;
    if (typeof claims.sid === 'string') {
      session = await this.sessions.findLiveByPublicId(claims.sid);
      if (!session || session.user_id !== claims.sub) return null;
    } else if (typeof claims.tid === 'string') {
      const row = await this.apiTokens.findLive(claims.tid);
      if (!row || row.user_id !== claims.sub) return null;
    } else {
      return null;
    }
    return { claims, scopes: claims.scope.split(' ').filter(Boolean), session };
  }

  async #keyFor(header: JWSHeaderParameters) {
    // jose never uses these on its own; refusing them outright keeps a future change from trusting them.
    if (KEY_SOURCE_HEADERS.some((name) => name in header)) throw new KeySourceRefused();
    const key = await this.keys.publicKey(header.kid);
    if (!key) throw new joseErrors.JWKSNoMatchingKey();
    return key;
  }
}

class KeySourceRefused extends Error {}
