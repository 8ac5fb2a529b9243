import type { FastifyInstance } from 'fastify';
import { iso } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { Services } from '../../services.js';
import { ADMIN_SCOPES, API_TOKEN_SCOPES, scopesOf } from '../../tokens/api-token-service.js';
import { assertRecentAuthentication } from '../../auth/flows/step-up.js';
import { callerAuth, sessionAuth } from '../auth.js';
import { apiTokenAuthenticator } from '../bearer-api-token.js';
import { requestMeta } from '../request-meta.js';
import { idParamSchema, nameSchema } from '../schemas.js';

const scopesSchema = {
  type: 'array', minItems: 1, maxItems: API_TOKEN_SCOPES.length, uniqueItems: true,
  items: { type: 'string', enum: [...API_TOKEN_SCOPES] },
} as const;

const tokenSchema = {
  type: 'object',
  required: ['id', 'name', 'prefix', 'scopes', 'orgId', 'createdAt', 'expiresAt', 'lastUsedAt', 'lastUsedIp'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    orgId: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    expiresAt: { type: ['string', 'null'] },
    lastUsedAt: { type: ['string', 'null'] },
    lastUsedIp: { type: ['string', 'null'] },
  },
} as const;

interface CreateBody {
  name: string;
  scopes: string[];
  expiresInDays?: number | null;
  orgId?: string;
}

/**
 * `/v1/me/tokens`: session only (API.md: no token can manage tokens). The
 * token value leaves the server once, in the 201 body.
 */
export async function tokenRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.rampart.bearerAuthenticators.push(apiTokenAuthenticator(services));

  app.post<{ Body: CreateBody }>('/v1/me/tokens', {
    config: { auth: 'session' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'scopes'],
        properties: {
          name: { ...nameSchema, maxLength: 100 },
          scopes: scopesSchema,
          // null asks for no expiry, refused unless RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS is set.
          expiresInDays: { type: ['integer', 'null'], minimum: 1, maximum: 3650 },
          orgId: idParamSchema,
        },
      },
      response: {
        201: {
          type: 'object',
          required: ['id', 'token', 'prefix', 'scopes', 'expiresAt'],
          properties: {
            id: { type: 'string' },
            token: { type: 'string' },
            name: { type: 'string' },
            prefix: { type: 'string' },
            scopes: { type: 'array', items: { type: 'string' } },
            orgId: { type: ['string', 'null'] },
            createdAt: { type: 'string' },
            expiresAt: { type: ['string', 'null'] },
          },
        },
      },
    },
  }, async (request, reply) => {
    const { name, scopes, expiresInDays, orgId } = request.body;
    // A token that can change an org outlives the session: only a recently authenticated one (a
    // login or a step-up within 10 minutes) hands it out, not a cookie stolen from an old session.
    const auth = sessionAuth(request);
    if (scopes.some((scope) => ADMIN_SCOPES.has(scope))) assertRecentAuthentication(auth.session, services.clock);
    const { token, row } = await services.apiTokens.create({ userId: auth.userId, name, scopes, expiresInDays, orgId: orgId ?? null }, requestMeta(request));
    return reply.code(201).send({
      id: row.id, token, name: row.name, prefix: row.prefix, scopes: scopesOf(row), orgId: row.org_id,
      createdAt: iso(row.created_at), expiresAt: row.expires_at === null ? null : iso(row.expires_at),
    });
  });

  // API.md: `profile:read` grants reads under /v1/me; the list shows no token, only names and prefixes.
  app.get('/v1/me/tokens', {
    config: { auth: 'user', scope: 'profile:read' },
    schema: { response: { 200: { type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: tokenSchema } } } } },
  }, async (request) => {
    const { userId } = callerAuth(request);
    const profile = await services.pii.getProfile(userId);
    if (!profile) throw new RampartError('unauthenticated');
    const rows = await services.apiTokens.list(userId, profile);
    return {
      tokens: rows.map((row) => ({
        id: row.id, name: row.name, prefix: row.prefix, scopes: scopesOf(row), orgId: row.org_id,
        createdAt: iso(row.created_at),
        expiresAt: row.expires_at === null ? null : iso(row.expires_at),
        lastUsedAt: row.last_used_at === null ? null : iso(row.last_used_at),
        lastUsedIp: row.lastUsedIp,
      })),
    };
  });

  app.delete<{ Params: { id: string } }>('/v1/me/tokens/:id', {
    config: { auth: 'session' },
    schema: {
      params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: idParamSchema } },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    const { userId } = sessionAuth(request);
    // Scoped by owner: another user's token id answers exactly like a missing one.
    if (!(await services.apiTokens.revoke(userId, request.params.id, requestMeta(request)))) throw new RampartError('not_found');
    return reply.code(204).send();
  });
}
