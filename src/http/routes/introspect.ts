import type { FastifyInstance } from 'fastify';
import { RampartError } from '../../errors.js';
import { isApiTokenLike } from '../../sdk/api-token-format.js';
import type { Services } from '../../services.js';
import { COMPACT_JWS } from '../../tokens/access-tokens.js';
import { scopesOf } from '../../tokens/api-token-service.js';
import { callerAuth } from '../auth.js';

interface Introspection {
  active: boolean;
  sub?: string;
  orgId?: string | null;
  scopes?: string[];
  scope?: string;
  exp?: number | null;
  iat?: number;
  tokenType?: 'api_token' | 'access_token';
  iss?: string;
  aud?: string;
  jti?: string;
  sid?: string;
  tid?: string;
}

const INACTIVE: Introspection = { active: false };

/**
 * RFC 7662 token introspection, with JSON in and out (the rest of the API is
 * JSON): `active` and, only when active, what the token is. Revocation shows at
 * once: API tokens are read from the store, access JWTs are verified and their
 * session or API token read from the store. A caller bound to an org only
 * learns about tokens of that org's members (tenant isolation).
 */
export async function introspectionRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post<{ Body: { token: string; token_type_hint?: string } }>('/v1/introspect', {
    config: { auth: 'user', scope: 'introspect' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['token'],
        properties: {
          token: { type: 'string', minLength: 1, maxLength: 8192 },
          // RFC 7662 §2.1: a hint the server may ignore; we tell the kinds apart by shape.
          token_type_hint: { type: 'string', maxLength: 32 },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['active'],
          properties: {
            active: { type: 'boolean' },
            sub: { type: 'string' },
            orgId: { type: ['string', 'null'] },
            scopes: { type: 'array', items: { type: 'string' } },
            scope: { type: 'string' },
            exp: { type: ['integer', 'null'] },
            iat: { type: 'integer' },
            tokenType: { type: 'string' },
            iss: { type: 'string' },
            aud: { type: 'string' },
            jti: { type: 'string' },
            sid: { type: 'string' },
            tid: { type: 'string' },
          },
        },
      },
    },
  }, async (request, reply) => {
    const caller = callerAuth(request);
    // API.md: the caller needs an API token with scope introspect (not a session, not an access JWT).
    if (caller.kind !== 'bearer' || caller.tokenType !== 'api_token') {
      throw new RampartError('insufficient_scope', { publicDetail: 'Introspection needs an API token with the introspect scope.' });
    }
    // RFC 7662 §4: the answer may reveal a token's state; never cache it.
    reply.header('cache-control', 'no-store');
    const result = await introspect(services, request.body.token);
    if (!result.active) return INACTIVE;
    // The owner's login is refused (a second factor is required and the grace is over): so is the token.
    if (await services.mfa.isPastEnrollmentDeadline(result.sub!)) return INACTIVE;
    if (caller.orgId) {
      const sameOrg = (result.orgId ?? null) === null || result.orgId === caller.orgId;
      if (!sameOrg || !(await services.orgs.roleOf(caller.orgId, result.sub!))) return INACTIVE;
    }
    return result;
  });
}

async function introspect(services: Services, token: string): Promise<Introspection> {
  if (isApiTokenLike(token)) {
    const row = await services.apiTokens.peek(token);
    if (!row) return INACTIVE;
    const scopes = scopesOf(row);
    return {
      active: true, tokenType: 'api_token', sub: row.user_id, orgId: row.org_id, scopes, scope: scopes.join(' '),
      exp: row.expires_at === null ? null : Math.floor(row.expires_at / 1000), iat: Math.floor(row.created_at / 1000), tid: row.id,
    };
  }
  if (COMPACT_JWS.test(token)) {
    const live = await services.accessTokens.authenticate(token);
    if (!live) return INACTIVE;
    const { claims, scopes } = live;
    return {
      active: true, tokenType: 'access_token', sub: claims.sub, orgId: claims.org_id ?? null, scopes, scope: claims.scope,
      exp: claims.exp, iat: claims.iat, iss: claims.iss, aud: claims.aud, jti: claims.jti,
      ...(claims.sid ? { sid: claims.sid } : {}), ...(claims.tid ? { tid: claims.tid } : {}),
    };
  }
  return INACTIVE;
}
