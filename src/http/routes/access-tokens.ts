import type { FastifyInstance } from 'fastify';
import { RampartError } from '../../errors.js';
import type { Services } from '../../services.js';
import { API_TOKEN_SCOPES, scopesOf } from '../../tokens/api-token-service.js';
import { callerAuth } from '../auth.js';
import { accessJwtAuthenticator } from '../bearer-access-jwt.js';
import { requestMeta } from '../request-meta.js';

/** Scopes an access JWT may carry: every token scope but `introspect`, which needs an API token (API.md). */
const JWT_SCOPES = API_TOKEN_SCOPES.filter((scope) => scope !== 'introspect');
/** What a session-derived JWT carries when the caller names no scopes: reads only. */
const DEFAULT_SESSION_SCOPES = ['profile:read', 'org:read', 'audit:read'];

/** How long the JWKS may be cached: short, so a rotation is seen quickly (verifiers also refetch on an unknown kid). */
const JWKS_MAX_AGE_SECONDS = 60;

export async function accessTokenRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.rampart.bearerAuthenticators.push(accessJwtAuthenticator(services));

  app.get('/.well-known/jwks.json', {
    config: { auth: 'none' },
    schema: {
      response: {
        200: {
          type: 'object',
          required: ['keys'],
          properties: {
            keys: {
              type: 'array',
              items: {
                type: 'object',
                required: ['kty', 'kid', 'alg', 'use'],
                properties: { kty: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' }, y: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string' }, use: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    // Public keys only: any origin may read them.
    reply.header('cross-origin-resource-policy', 'cross-origin');
    reply.type('application/jwk-set+json; charset=utf-8');
    return services.signingKeys.jwks();
  });

  /**
   * Exchanges the caller's session or API token for an access JWT. The route
   * accepts a bearer holding any scope; the JWT carries at most the caller's
   * scopes. An access JWT cannot mint another (no chain that outlives its source).
   */
  app.post<{ Body: { scopes?: string[] } | undefined }>('/v1/token/access', {
    config: { auth: 'user', scope: API_TOKEN_SCOPES },
    // The body is optional: no body means "the default scopes".
    preValidation: async (request) => {
      if (request.body === undefined || request.body === null) request.body = {};
    },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { scopes: { type: 'array', minItems: 1, maxItems: JWT_SCOPES.length, uniqueItems: true, items: { type: 'string', enum: [...JWT_SCOPES] } } },
      },
      response: {
        200: {
          type: 'object',
          required: ['accessToken', 'tokenType', 'expiresIn', 'scopes'],
          properties: { accessToken: { type: 'string' }, tokenType: { type: 'string' }, expiresIn: { type: 'integer' }, scopes: { type: 'array', items: { type: 'string' } } },
        },
      },
    },
  }, async (request) => {
    const auth = callerAuth(request);
    const requested = request.body?.scopes;
    let source;
    if (auth.kind === 'session') {
      const scopes = requested ?? DEFAULT_SESSION_SCOPES;
      source = { userId: auth.userId, sessionPublicId: auth.session.public_id, scopes, notAfter: services.sessions.effectiveExpiry(auth.session) };
    } else {
      if (auth.tokenType !== 'api_token') {
        throw new RampartError('insufficient_scope', { publicDetail: 'Exchange a session or an API token, not an access token.' });
      }
      const row = await services.apiTokens.findLive(auth.credentialId);
      if (!row) throw new RampartError('unauthenticated');
      const held = scopesOf(row).filter((scope) => scope !== 'introspect');
      const scopes = requested ?? held;
      if (scopes.length === 0 || scopes.some((scope) => !held.includes(scope))) {
        throw new RampartError('insufficient_scope', { publicDetail: 'An access token can only carry scopes its API token holds (never introspect).' });
      }
      source = { userId: auth.userId, tokenId: row.id, orgId: row.org_id, scopes, notAfter: row.expires_at };
    }
    const issued = await services.accessTokens.issue(source);
    const meta = requestMeta(request);
    await services.events.record({
      action: 'access_token.issued', orgId: source.orgId ?? null,
      actor: auth.kind === 'session' ? { type: 'user', id: auth.userId } : { type: 'token', id: auth.credentialId },
      target: { type: 'user', id: auth.userId }, origin: meta, outcome: 'success',
      details: { jti: issued.claims.jti, scopes: source.scopes, source: auth.kind === 'session' ? 'session' : 'api_token', exp: issued.claims.exp },
    });
    return { accessToken: issued.accessToken, tokenType: 'Bearer', expiresIn: issued.expiresIn, scopes: [...source.scopes] };
  });
}
