import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { assertRecentAuthentication, assertRecentReauth } from '../auth/flows/step-up.js';
import { RampartError } from '../errors.js';
import type { Services } from '../services.js';
import type { ActiveSession } from '../sessions/session-service.js';

export const SESSION_COOKIE = '__Host-rampart_session';
export const CSRF_HEADER = 'x-csrf-token';

/**
 * How a route authenticates:
 *  - 'none': public;
 *  - 'session': a browser session only (password, factor, token and account
 *    changes: API.md says no token may do these);
 *  - 'user': a session, or a bearer credential holding the route's `scope`.
 */
export type AuthMode = 'none' | 'session' | 'user';

export interface SessionAuth {
  kind: 'session';
  userId: string;
  session: ActiveSession;
  /** A session holds every power of its user. */
  scopes: null;
}

export interface BearerAuth {
  kind: 'bearer';
  userId: string;
  /** 'api_token' | 'access_jwt' … */
  tokenType: string;
  credentialId: string;
  scopes: readonly string[];
  /** The org a token is bound to, or null. */
  orgId: string | null;
  /** The session an access JWT was minted from, when it was. */
  sessionPublicId?: string | null;
  /**
   * That session, live: a JWT minted from a session carries its proofs and no more, so an
   * action that needs a step-up or a recent sign-in checks them on it (`requireSessionProof`).
   */
  session?: ActiveSession | null;
}

export type AuthContext = SessionAuth | BearerAuth;

/** Resolves a bearer token it recognizes (returns null when the token is not of its kind). */
export interface BearerAuthenticator {
  authenticate(token: string, request: FastifyRequest): Promise<BearerAuth | null>;
}

/** Runs after authentication on every authenticated route; throws to refuse (MFA enrollment, IP allowlists…). */
export type AuthGuard = (request: FastifyRequest, auth: AuthContext) => Promise<void> | void;

/** A registered route, as the tenant-isolation walk and contract tests enumerate them. */
export interface RouteEntry {
  method: string;
  url: string;
  auth: AuthMode;
  scope: string | readonly string[] | undefined;
  /** Where the request names an org by an `orgId` member (path param, body or query string), per the route's schema. */
  orgIdIn: ReadonlyArray<'path' | 'body' | 'query'>;
  /** The query-string parameters its schema declares (none: the query string is ignored). */
  query: readonly string[];
  /** The JSON schema of its body, if it takes one (the fuzz tests generate bodies from it). */
  body: unknown;
}

export interface HttpExtensions {
  bearerAuthenticators: BearerAuthenticator[];
  authGuards: AuthGuard[];
  /** Every route registered after the auth plugin (all of ROUTES), in registration order. */
  routes: RouteEntry[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthMode;
    /**
     * Scope a bearer credential needs on an 'user' route; a list means any one of
     * them (POST /v1/token/access accepts a token holding any scope).
     */
    scope?: string | readonly string[];
    /** Reachable by a session that may only enroll a second factor (org MFA grace period). */
    allowDuringMfaEnrollment?: boolean;
  }
  interface FastifyRequest {
    auth: AuthContext | null;
  }
  interface FastifyInstance {
    rampart: HttpExtensions;
  }
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;

export function registerAuth(app: FastifyInstance, services: Services): void {
  app.decorateRequest('auth', null);
  const extensions: HttpExtensions = { bearerAuthenticators: [], authGuards: [], routes: [] };
  app.decorate('rampart', extensions);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat() as string[]) {
      if (method === 'HEAD') continue;
      extensions.routes.push({ method, url: route.url, auth: route.config?.auth ?? 'none', scope: route.config?.scope, orgIdIn: orgIdPlaces(route), query: queryNames(route), body: route.schema?.body });
    }
  });

  app.addHook('onRequest', async (request) => {
    const mode = request.routeOptions.config?.auth ?? 'none';
    if (mode === 'none') return;
    const auth = await authenticate(app, services, request);
    if (!auth) throw new RampartError('unauthenticated');
    if (auth.kind === 'bearer') {
      if (mode === 'session') {
        throw new RampartError('insufficient_scope', { publicDetail: 'This action needs a signed-in session; tokens cannot perform it.' });
      }
      const scope = request.routeOptions.config.scope;
      const accepted: readonly string[] = scope === undefined ? [] : typeof scope === 'string' ? [scope] : scope;
      if (!accepted.some((name) => auth.scopes.includes(name))) {
        throw new RampartError('insufficient_scope', { publicDetail: accepted.length > 0 ? `This action needs the ${accepted.join(' or ')} scope.` : 'Tokens cannot perform this action.' });
      }
    } else if (UNSAFE_METHODS.has(request.method)) {
      // Cookies ride along on cross-site requests; the header proves same-origin script.
      const header = request.headers[CSRF_HEADER];
      if (!(await services.sessions.isValidCsrfToken(auth.session.public_id, typeof header === 'string' ? header : undefined))) {
        throw new RampartError('csrf_failed');
      }
    }
    request.auth = auth;
    for (const guard of app.rampart.authGuards) await guard(request, auth);
  });
}

/** Where a route takes an `orgId`: its path, or a property of its body or query-string schema. */
function orgIdPlaces(route: { url: string; schema?: { body?: unknown; querystring?: unknown } }): Array<'path' | 'body' | 'query'> {
  const hasOrgId = (schema: unknown) => typeof schema === 'object' && schema !== null
    && Object.hasOwn((schema as { properties?: object }).properties ?? {}, 'orgId');
  const places: Array<'path' | 'body' | 'query'> = [];
  if (/:orgId(?![A-Za-z0-9_])/.test(route.url)) places.push('path');
  if (hasOrgId(route.schema?.body)) places.push('body');
  if (hasOrgId(route.schema?.querystring)) places.push('query');
  return places;
}

function queryNames(route: { schema?: { querystring?: unknown } }): string[] {
  const schema = route.schema?.querystring as { properties?: object } | undefined;
  return Object.keys(schema?.properties ?? {});
}

async function authenticate(app: FastifyInstance, services: Services, request: FastifyRequest): Promise<AuthContext | null> {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = BEARER.exec(authorization);
    if (!match) throw new RampartError('unauthenticated', { publicDetail: 'The Authorization header must be "Bearer <token>".' });
    for (const authenticator of app.rampart.bearerAuthenticators) {
      const auth = await authenticator.authenticate(match[1]!, request);
      if (auth) return auth;
    }
    return null;
  }
  const secret = request.cookies[SESSION_COOKIE];
  if (!secret) return null;
  const session = await services.sessions.authenticate(secret);
  return session ? { kind: 'session', userId: session.user_id, session, scopes: null } : null;
}

/** The signed-in session of a 'session' route (the hook guarantees it). */
export function sessionAuth(request: FastifyRequest): SessionAuth {
  if (request.auth?.kind !== 'session') throw new RampartError('unauthenticated');
  return request.auth;
}

/** Throws `reauth_required` unless the session re-authenticated within the last 10 minutes. */
export function requireStepUp(request: FastifyRequest, services: Services): SessionAuth {
  const auth = sessionAuth(request);
  assertRecentReauth(auth.session, services.clock);
  return auth;
}

/**
 * For 'user' routes whose session callers need a step-up (`'step-up'`) or a recent sign-in
 * (`'recent'`): a session is checked itself, an access JWT minted from a session is checked on
 * that session (else a stale cookie could mint one and skip the check), an API token (or a JWT
 * minted from one) passes: its creation asked for the proof.
 */
export function requireSessionProof(auth: AuthContext, services: Services, proof: 'step-up' | 'recent'): void {
  const session = auth.kind === 'session' ? auth.session : auth.session ?? null;
  if (!session) return;
  if (proof === 'step-up') assertRecentReauth(session, services.clock);
  else assertRecentAuthentication(session, services.clock);
}

/** The caller of a 'user' route. */
export function callerAuth(request: FastifyRequest): AuthContext {
  if (!request.auth) throw new RampartError('unauthenticated');
  return request.auth;
}

export function setSessionCookie(reply: FastifyReply, secret: string, expiresAt: number): void {
  reply.setCookie(SESSION_COOKIE, secret, {
    path: '/',
    secure: true,
    httpOnly: true,
    sameSite: 'strict',
    expires: new Date(expiresAt),
  });
}

/**
 * Ends the browser's side of a session: the cookie is expired by name, and
 * Clear-Site-Data drops the cache and storage (localStorage, IndexedDB, service
 * workers) the signed-in pages left for this origin (ASVS V14.3.1). Not "cookies":
 * browsers apply that to the whole registrable domain, which would sign the user out
 * of every sibling application on it.
 */
export function clearSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
  reply.header('clear-site-data', '"cache", "storage"');
}
