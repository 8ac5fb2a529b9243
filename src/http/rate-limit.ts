import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from './auth.js';
import { SESSION_COOKIE } from './auth.js';
import { RampartError } from '../errors.js';
import { addressSubject, type RateLimitDecision, RateLimitStoreUnavailable, type RateLimitTier } from '../ratelimit/rate-limits.js';
import type { Services } from '../services.js';
import { normalizeIp } from './request-meta.js';

/**
 * How a route is rate limited:
 *  - 'credential': a route that checks a password, code or reset token: the anonymous
 *    tier per address plus a per-account tier, and FAIL-CLOSED when the counter store
 *    is down (a Redis outage must not open the door to guessing);
 *  - 'default': the anonymous or authenticated tier, FAIL-OPEN when the store is down
 *    (counted in rampart_rate_limit_store_errors_total) so an outage of an optional
 *    component does not take the whole API down;
 *  - 'mail': a route that mails an address its caller chose (invitations): the default
 *    tiers plus a per-account mail budget (the account tier, keyed apart from the
 *    credential budget), FAIL-CLOSED: signup, an org and an invitation are all anyone
 *    needs to make Rampart mail strangers (ASVS V2.4.1);
 *  - 'exempt': health probes only.
 */
export type RateLimitClass = 'credential' | 'mail' | 'default' | 'exempt';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Overrides the class from CREDENTIAL_ROUTES / EXEMPT_ROUTES. */
    rateLimit?: RateLimitClass;
  }
  interface FastifyRequest {
    /** The most restrictive limit counted for this request, for the RateLimit-* headers. */
    rateLimit: RateLimitDecision | null;
    /** A signup whose `taken` point was counted (and is to be given back unless it answers 409). */
    rateLimitTaken: boolean;
  }
}

/** Routes that check a secret: they get the low tiers and fail closed. Routes of every feature are listed here. */
export const CREDENTIAL_ROUTES: ReadonlySet<string> = new Set([
  'POST /v1/signup',
  'POST /v1/login',
  'POST /v1/login/mfa',
  'POST /v1/login/webauthn/options',
  'POST /v1/password/forgot',
  'POST /v1/password/reset',
  'POST /v1/password/change-expired',
  'POST /v1/me/reauth',
  'POST /v1/me/password',
]);

/** Load-balancer and orchestrator probes: frequent, cheap, from a few addresses. */
export const EXEMPT_ROUTES: ReadonlySet<string> = new Set(['GET /healthz', 'GET /readyz']);

export function rateLimitClassOf(request: FastifyRequest): RateLimitClass {
  return routeClass(request.method, request.routeOptions.url ?? '', request.routeOptions.config?.rateLimit);
}

/** The class of a route: its own `config.rateLimit`, else the lists above. */
function routeClass(method: string, url: string, configured: RateLimitClass | undefined): RateLimitClass {
  if (configured) return configured;
  const route = `${method} ${url}`;
  if (CREDENTIAL_ROUTES.has(route)) return 'credential';
  if (EXEMPT_ROUTES.has(route)) return 'exempt';
  return 'default';
}

/** `POST /v1/signup`, whose `409 email_taken` answers the `taken` tier caps per address. */
function isSignup(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === '/v1/signup';
}

function presentsCredential(request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined || request.cookies?.[SESSION_COOKIE] !== undefined;
}

/** The budget an authenticated caller spends: its session (also for JWTs minted from it) or its token. */
function credentialSubject(auth: AuthContext): string {
  if (auth.kind === 'session') return `session:${auth.session.public_id}`;
  if (auth.sessionPublicId) return `session:${auth.sessionPublicId}`;
  if (auth.tokenType === 'api_token') return `token:${auth.credentialId}`;
  return `user:${auth.userId}`;
}

/**
 * Rate limiting as Fastify hooks. `registerRateLimitsBeforeAuth` must run before
 * the authentication hook (anonymous traffic is stopped before any credential
 * lookup), `registerRateLimitsAfterAuth` after it.
 */
export function registerRateLimitsBeforeAuth(app: FastifyInstance, services: Services): void {
  app.decorateRequest('rateLimit', null);
  app.decorateRequest('rateLimitTaken', false);
  if (services.config.insecureDisableRateLimits) return;

  app.addHook('onRequest', async (request, reply) => {
    const kind = rateLimitClassOf(request);
    if (kind === 'exempt') return;
    const mode = request.routeOptions.config?.auth ?? 'none';
    const address = addressSubject(normalizeIp(request.ip));
    if (mode === 'none' || !presentsCredential(request)) {
      await count(services, request, reply, 'anon', address, kind === 'credential');
      // Counted before the answer is known (parallel signups cannot all pass a check made
      // first), given back below unless the answer is email_taken.
      if (isSignup(request)) await count(services, request, reply, 'taken', address, true);
      return;
    }
    // A credential waits for authentication; an address that keeps presenting bad ones is stopped first.
    await check(services, request, reply, 'badauth', address);
  });
}

export function registerRateLimitsAfterAuth(app: FastifyInstance, services: Services): void {
  if (services.config.insecureDisableRateLimits) return;

  app.addHook('onRequest', async (request, reply) => {
    if (!request.auth) return;
    const kind = rateLimitClassOf(request);
    if (kind === 'exempt') return;
    const credential = kind === 'credential';
    await count(services, request, reply, 'auth', credentialSubject(request.auth), credential);
    // Step-up checks a password with a session: its account budget is the user's.
    if (credential) await count(services, request, reply, 'account', `user:${request.auth.userId}`, true);
    else if (kind === 'mail') await count(services, request, reply, 'account', `mail:${request.auth.userId}`, true);
  });

  // The account of an anonymous credential request is known once the body is parsed and
  // validated. Only credential routes carry this hook (added as each route is declared).
  const countAccount = async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.auth) return;
    const email = (request.body as { email?: unknown } | undefined)?.email;
    if (typeof email !== 'string') return;
    // Keyed on the email's blind index, never the address itself.
    await count(services, request, reply, 'account', `email:${await services.pii.emailIndex(email)}`, true);
  };
  app.addHook('onRoute', (route) => {
    if (![route.method].flat().some((method) => routeClass(method, route.url, route.config?.rateLimit) === 'credential')) return;
    route.preHandler = [...[route.preHandler ?? []].flat(), countAccount];
  });

  // A callback hook: the answer is out already, and most requests have nothing to count.
  app.addHook('onResponse', (request, reply, done) => {
    if (isSignup(request) && request.rateLimitTaken && reply.statusCode !== 409) {
      services.rateLimits.refund('taken', addressSubject(normalizeIp(request.ip))).catch(() => undefined);
    }
    if (reply.statusCode === 401 && !request.auth && presentsCredential(request) && (request.routeOptions.config?.auth ?? 'none') !== 'none') {
      // Best effort; the next check fails open or closed on its own.
      services.rateLimits.consume('badauth', addressSubject(normalizeIp(request.ip))).catch(() => undefined);
    }
    done();
  });
}

async function count(services: Services, request: FastifyRequest, reply: FastifyReply, tier: RateLimitTier, subject: string, failClosed: boolean): Promise<void> {
  let decision: RateLimitDecision;
  try {
    decision = await services.rateLimits.consume(tier, subject);
  } catch (error) {
    handleStoreError(services, request, error, tier, failClosed);
    return;
  }
  // Counted, allowed or not: a refused signup answers 429, and its point comes back too.
  if (tier === 'taken') request.rateLimitTaken = true;
  apply(services, request, reply, decision);
}

async function check(services: Services, request: FastifyRequest, reply: FastifyReply, tier: RateLimitTier, subject: string): Promise<void> {
  let decision: RateLimitDecision;
  try {
    decision = await services.rateLimits.peek(tier, subject);
  } catch (error) {
    handleStoreError(services, request, error, tier, false);
    return;
  }
  if (!decision.allowed) apply(services, request, reply, decision);
}

function handleStoreError(services: Services, request: FastifyRequest, error: unknown, tier: RateLimitTier, failClosed: boolean): void {
  if (!(error instanceof RateLimitStoreUnavailable)) throw error;
  services.metrics.rateLimitStoreErrors.inc({ tier, decision: failClosed ? 'refused' : 'allowed' });
  request.log.warn({ tier, failClosed, err: error.cause }, 'rate-limit store unavailable');
  if (failClosed) {
    throw new RampartError('rate_limiter_unavailable', { headers: { 'retry-after': '5' }, detail: 'rate-limit store unavailable; credential route fails closed' });
  }
}

/**
 * Sets the RateLimit-* headers of the most restrictive tier; throws 429 when it is spent.
 * The account tier shows itself only when it refuses: its counter would tell a stranger
 * how busy someone else's account has been (and the forgot-password answer must be the
 * same for every address).
 */
function apply(services: Services, request: FastifyRequest, reply: FastifyReply, decision: RateLimitDecision): void {
  const shown = request.rateLimit;
  // The account tier would tell a stranger how busy someone else's account is; the taken
  // tier's few points would stand in for the anonymous tier's on every signup.
  const visible = (decision.tier !== 'account' && decision.tier !== 'taken') || !decision.allowed;
  if (visible && (!shown || decision.remaining < shown.remaining || !decision.allowed)) {
    request.rateLimit = decision;
    reply.header('ratelimit-limit', String(decision.limit));
    reply.header('ratelimit-remaining', String(decision.remaining));
    reply.header('ratelimit-reset', String(decision.resetSeconds));
    reply.header('ratelimit-policy', `${decision.limit};w=${decision.windowSeconds}`);
  }
  if (decision.allowed) return;
  services.metrics.rateLimitHits.inc({ tier: decision.tier });
  request.log.info({ tier: decision.tier }, 'rate limited');
  throw new RampartError('rate_limited', {
    headers: { 'retry-after': String(decision.resetSeconds) },
    publicDetail: `Too many requests; retry in ${decision.resetSeconds} s.`,
    detail: `rate limit tier ${decision.tier}`,
  });
}
