/**
 * rampart/sdk — for the product's backend: who is calling, and may they?
 *
 * - Access JWTs are verified offline against Rampart's JWKS (cached; refetched
 *   when an unknown `kid` appears, at most once per `jwksRefetchFloorMs`), with
 *   the algorithm, issuer, audience and `typ` pinned.
 * - API tokens (`rpat_…`) are checked locally (checksum), then through
 *   Rampart's introspection endpoint with a short cache.
 * - Middleware for Fastify and Express sets the caller and answers 401/403 as
 *   RFC 9457 problem bodies.
 *
 * This module imports only jose and Node built-ins: nothing of the server.
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type FlattenedJWSInput, type JWSHeaderParameters } from 'jose';
import { hasValidApiTokenChecksum, isApiTokenLike } from './api-token-format.js';

export { hasValidApiTokenChecksum, isApiTokenLike } from './api-token-format.js';
export { SIGNATURE_HEADER as WEBHOOK_SIGNATURE_HEADER, verifyWebhookSignature } from './webhook-signature.js';

/** The scopes Rampart grants (API.md). */
export type RampartScope = 'profile:read' | 'org:read' | 'org:admin' | 'audit:read' | 'introspect' | (string & {});

/** Who is calling, as far as Rampart vouches for it: ids and scopes only. */
export interface RampartCaller {
  /** Rampart user id (`usr_…`); with the issuer, the stable identity of the caller. */
  userId: string;
  tokenType: 'access_token' | 'api_token';
  scopes: string[];
  /** The org the credential is bound to, or null. */
  orgId: string | null;
  /** Session public id an access JWT was minted from, or null. */
  sessionId: string | null;
  /** API token id (the token itself, or the one an access JWT was minted from), or null. */
  tokenId: string | null;
  /** When the credential ends, or null for a token without expiry. */
  expiresAt: Date | null;
}

export interface RampartVerifierOptions {
  /** Rampart's PUBLIC_URL, e.g. `https://auth.example.com`: the `iss` of its access JWTs. */
  issuer: string;
  /** The `aud` Rampart puts in access JWTs (ACCESS_TOKEN_AUDIENCE). Default: `<issuer>/v1`. */
  audience?: string;
  /** Default: `<issuer>/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** An API token holding the `introspect` scope. Without it, API tokens are refused. */
  introspectionToken?: string;
  /** How long an introspection answer is reused, in ms. Default 30 000 (a revoked API token may live this long here); 0 disables the cache. */
  introspectionCacheMs?: number;
  /** Least time between two JWKS fetches triggered by an unknown `kid`, in ms. Default 30 000. */
  jwksRefetchFloorMs?: number;
  /** How long fetched keys are used before a refetch, in ms. Default 600 000. */
  jwksCacheMaxAgeMs?: number;
  /** Allowed clock difference for `exp`/`nbf`/`iat`, in seconds. Default 5. */
  clockToleranceSeconds?: number;
  /** Timeout of calls to Rampart, in ms. Default 5 000. */
  timeoutMs?: number;
  /**
   * Also introspect access JWTs, so a logout or revocation ends them here at once
   * instead of at their `exp` (≤ 15 min). Costs one call per token per cache period.
   */
  checkAccessTokenRevocation?: boolean;
  /** A fetch implementation (a custom CA, a proxy, tests). Default: the global fetch. */
  fetch?: typeof fetch;
  /** The time source (tests). Default: Date.now. */
  now?: () => number;
}

export type RampartAuthErrorCode = 'unauthenticated' | 'invalid_token' | 'insufficient_scope' | 'introspection_unavailable';

/** A refused credential: `status` and `code` are what the middleware answers. */
export class RampartAuthError extends Error {
  readonly status: 401 | 403 | 503;
  readonly code: RampartAuthErrorCode;
  readonly scope: string | undefined;

  constructor(code: RampartAuthErrorCode, message: string, options: { scope?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RampartAuthError';
    this.code = code;
    this.scope = options.scope;
    this.status = code === 'insufficient_scope' ? 403 : code === 'introspection_unavailable' ? 503 : 401;
  }

  /** RFC 9457 problem details. The detail is generic on purpose: no hint for an attacker. */
  problem(): { type: 'about:blank'; title: string; status: number; code: string; detail: string } {
    const titles: Record<RampartAuthErrorCode, string> = {
      unauthenticated: 'Authentication is required',
      invalid_token: 'The access token is invalid or expired',
      insufficient_scope: 'The token lacks the required scope',
      introspection_unavailable: 'The credential cannot be checked right now',
    };
    const title = titles[this.code];
    return { type: 'about:blank', title, status: this.status, code: this.code, detail: this.scope ? `This action needs the ${this.scope} scope.` : title };
  }

  /** RFC 6750 §3 `WWW-Authenticate` value. */
  challenge(): string {
    if (this.code === 'unauthenticated') return 'Bearer realm="rampart"';
    if (this.code === 'insufficient_scope') return `Bearer realm="rampart", error="insufficient_scope", scope="${this.scope ?? ''}"`;
    return 'Bearer realm="rampart", error="invalid_token"';
  }
}

/** The smallest request and reply shapes the middleware needs (no framework import). */
export interface RequestLike {
  headers: Record<string, string | string[] | undefined>;
}
export interface FastifyReplyLike {
  code(statusCode: number): unknown;
  header(name: string, value: string): unknown;
  type(contentType: string): unknown;
  send(payload: string): unknown;
}
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

export interface MiddlewareOptions {
  /** A scope the caller must hold; omitted: any valid credential. */
  scope?: RampartScope;
}

export const ACCESS_TOKEN_TYP = 'at+jwt';
/** Algorithms Rampart signs with. Never `none`, never HS* (no key confusion with a public key). */
const ALGORITHMS = ['EdDSA', 'ES256'];
const KEY_SOURCE_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;
const CACHE_LIMIT = 10_000;
const BEARER = /^Bearer ([\x21-\x7e]{1,8192})$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

interface IntrospectionAnswer {
  active: boolean;
  sub?: string;
  orgId?: string | null;
  scopes?: string[];
  exp?: number | null;
  tokenType?: string;
  sid?: string;
  tid?: string;
}

export class RampartVerifier {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>;
  readonly #options: RampartVerifierOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #cache = new Map<string, { answer: IntrospectionAnswer; until: number }>();
  readonly #inflight = new Map<string, Promise<IntrospectionAnswer>>();

  constructor(options: RampartVerifierOptions) {
    // The keys that decide which tokens are genuine, and the introspection answers, must come
    // over TLS: plain HTTP only to this machine.
    for (const [name, url] of [['issuer', options.issuer], ['jwksUrl', options.jwksUrl]] as const) {
      if (url === undefined) continue;
      const parsed = new URL(url);
      if (parsed.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname)) {
        throw new TypeError(`rampart/sdk: the ${name} must be an https URL`);
      }
    }
    this.#options = options;
    this.#issuer = options.issuer.replace(/\/+$/, '');
    this.#audience = options.audience ?? `${this.#issuer}/v1`;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
    this.#jwks = createRemoteJWKSet(new URL(options.jwksUrl ?? `${this.#issuer}/.well-known/jwks.json`), {
      cooldownDuration: options.jwksRefetchFloorMs ?? 30_000,
      cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      timeoutDuration: options.timeoutMs ?? 5_000,
      ...(options.fetch ? { [customFetch]: options.fetch as never } : {}),
    });
  }

  /** The caller for an `Authorization` header value; throws RampartAuthError. */
  async verifyAuthorization(header: string | string[] | undefined): Promise<RampartCaller> {
    if (header === undefined) throw new RampartAuthError('unauthenticated', 'no Authorization header');
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) throw new RampartAuthError('invalid_token', 'the Authorization header must be "Bearer <token>"');
    return this.verify(match[1]!);
  }

  /** The caller for a bearer token (access JWT or API token); throws RampartAuthError. */
  async verify(token: string): Promise<RampartCaller> {
    if (isApiTokenLike(token)) return this.#verifyApiToken(token);
    if (COMPACT_JWS.test(token)) return this.verifyAccessToken(token);
    throw new RampartAuthError('invalid_token', 'not a Rampart token');
  }

  /** Verifies an access JWT offline (and online too with `checkAccessTokenRevocation`). */
  async verifyAccessToken(token: string): Promise<RampartCaller> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, (header: JWSHeaderParameters, input: FlattenedJWSInput) => {
        // Keys come from the configured JWKS only, never from the token (ASVS V9.1.3).
        if (KEY_SOURCE_HEADERS.some((name) => name in header)) throw new joseErrors.JWSInvalid('key source headers are refused');
        // Rampart always names its key; without a kid a verifier would try whatever key matches the alg.
        if (typeof header.kid !== 'string' || header.kid.length === 0) throw new joseErrors.JWSInvalid('a kid is required');
        return this.#jwks(header, input);
      }, {
        algorithms: ALGORITHMS,
        issuer: this.#issuer,
        audience: this.#audience,
        typ: ACCESS_TOKEN_TYP,
        clockTolerance: this.#options.clockToleranceSeconds ?? 5,
        currentDate: new Date(this.#now()),
        maxTokenAge: '15m',
        requiredClaims: ['sub', 'exp', 'iat', 'jti', 'scope'],
      }));
    } catch (error) {
      throw new RampartAuthError('invalid_token', error instanceof Error ? error.message : 'invalid access token', { cause: error });
    }
    const { sub, scope, sid, tid, org_id: orgId, exp } = payload as Record<string, unknown>;
    if (typeof sub !== 'string' || typeof scope !== 'string' || (typeof sid === 'string') === (typeof tid === 'string')) {
      throw new RampartAuthError('invalid_token', 'malformed access token claims');
    }
    if (this.#options.checkAccessTokenRevocation && !(await this.#introspect(token)).active) {
      throw new RampartAuthError('invalid_token', 'the access token was revoked');
    }
    return {
      userId: sub,
      tokenType: 'access_token',
      scopes: scope.split(' ').filter(Boolean),
      orgId: typeof orgId === 'string' ? orgId : null,
      sessionId: typeof sid === 'string' ? sid : null,
      tokenId: typeof tid === 'string' ? tid : null,
      expiresAt: new Date((exp as number) * 1000),
    };
  }

  async #verifyApiToken(token: string): Promise<RampartCaller> {
    // A typo or a made-up token never costs a call to Rampart.
    if (!hasValidApiTokenChecksum(token)) throw new RampartAuthError('invalid_token', 'bad API token checksum');
    const answer = await this.#introspect(token);
    if (!answer.active || typeof answer.sub !== 'string' || answer.tokenType !== 'api_token') {
      throw new RampartAuthError('invalid_token', 'the API token is not active');
    }
    return {
      userId: answer.sub,
      tokenType: 'api_token',
      scopes: Array.isArray(answer.scopes) ? answer.scopes.filter((s): s is string => typeof s === 'string') : [],
      orgId: typeof answer.orgId === 'string' ? answer.orgId : null,
      sessionId: null,
      tokenId: typeof answer.tid === 'string' ? answer.tid : null,
      expiresAt: typeof answer.exp === 'number' ? new Date(answer.exp * 1000) : null,
    };
  }

  /** POST /v1/introspect, cached by the token's SHA-256 (the token itself is never a map key). */
  async #introspect(token: string): Promise<IntrospectionAnswer> {
    const introspectionToken = this.#options.introspectionToken;
    if (!introspectionToken) throw new RampartAuthError('invalid_token', 'API tokens need an introspectionToken in the verifier options');
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached && cached.until > now) return cached.answer;
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const request = this.#callIntrospection(introspectionToken, token).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, request);
    const answer = await request;
    const ttl = this.#options.introspectionCacheMs ?? 30_000;
    if (ttl > 0) {
      // Never past the token's own end.
      const until = Math.min(now + ttl, typeof answer.exp === 'number' ? answer.exp * 1000 : Infinity);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, { answer, until });
    }
    return answer;
  }

  async #callIntrospection(introspectionToken: string, token: string): Promise<IntrospectionAnswer> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.#issuer}/v1/introspect`, {
        method: 'POST',
        headers: { authorization: `Bearer ${introspectionToken}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ token }),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 5_000),
      });
    } catch (error) {
      throw new RampartAuthError('introspection_unavailable', 'Rampart did not answer the introspection request', { cause: error });
    }
    if (response.status !== 200) {
      // Fail closed. A 401/403 here means the introspection token itself is wrong: an operator problem.
      throw new RampartAuthError('introspection_unavailable', `introspection answered ${response.status}`);
    }
    const body = (await response.json()) as IntrospectionAnswer;
    return typeof body === 'object' && body !== null && body.active === true ? body : { active: false };
  }

  /** Throws `insufficient_scope` unless the caller holds `scope`. */
  requireScope(caller: RampartCaller, scope: RampartScope): void {
    if (!caller.scopes.includes(scope)) throw new RampartAuthError('insufficient_scope', 'missing scope', { scope });
  }

  /**
   * A Fastify `onRequest`/`preHandler` hook: sets `request.rampart` (see
   * `callerOf`) or answers 401/403 with a problem body.
   */
  fastify(options: MiddlewareOptions = {}): (request: RequestLike, reply: FastifyReplyLike) => Promise<unknown> {
    return async (request, reply) => {
      try {
        (request as RequestLike & { rampart?: RampartCaller }).rampart = await this.#authorize(request, options);
        return undefined;
      } catch (error) {
        const refusal = asRefusal(error);
        reply.code(refusal.status);
        reply.header('www-authenticate', refusal.challenge());
        reply.header('cache-control', 'no-store');
        reply.type('application/problem+json; charset=utf-8');
        reply.send(JSON.stringify(refusal.problem()));
        return reply;
      }
    };
  }

  /** Express (or any Node `(req, res, next)`) middleware: sets `req.rampart` or answers 401/403 with a problem body. */
  express(options: MiddlewareOptions = {}): (req: RequestLike, res: NodeResponseLike, next: (error?: unknown) => void) => void {
    return (req, res, next) => {
      this.#authorize(req, options).then(
        (caller) => {
          (req as RequestLike & { rampart?: RampartCaller }).rampart = caller;
          next();
        },
        (error: unknown) => {
          const refusal = asRefusal(error);
          res.statusCode = refusal.status;
          res.setHeader('www-authenticate', refusal.challenge());
          res.setHeader('cache-control', 'no-store');
          res.setHeader('content-type', 'application/problem+json; charset=utf-8');
          res.end(JSON.stringify(refusal.problem()));
        },
      );
    };
  }

  async #authorize(request: RequestLike, options: MiddlewareOptions): Promise<RampartCaller> {
    const caller = await this.verifyAuthorization(request.headers.authorization);
    if (options.scope) this.requireScope(caller, options.scope);
    return caller;
  }
}

function asRefusal(error: unknown): RampartAuthError {
  return error instanceof RampartAuthError ? error : new RampartAuthError('introspection_unavailable', 'unexpected verification failure', { cause: error });
}

export function createRampartVerifier(options: RampartVerifierOptions): RampartVerifier {
  return new RampartVerifier(options);
}

/** The caller the middleware set on a request, or null. */
export function callerOf(request: object): RampartCaller | null {
  return (request as { rampart?: RampartCaller }).rampart ?? null;
}
