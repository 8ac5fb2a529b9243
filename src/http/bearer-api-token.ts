import type { FastifyRequest } from 'fastify';
import { isApiTokenLike } from '../sdk/api-token-format.js';
import type { Services } from '../services.js';
import { scopesOf } from '../tokens/api-token-service.js';
import type { BearerAuth, BearerAuthenticator } from './auth.js';
import { requestMeta } from './request-meta.js';

/** `Authorization: Bearer rpat_…` on every /v1 route marked `auth: 'user'` with a scope the token holds. */
export function apiTokenAuthenticator(services: Services): BearerAuthenticator {
  return {
    async authenticate(token: string, request: FastifyRequest): Promise<BearerAuth | null> {
      if (!isApiTokenLike(token)) return null;
      const row = await services.apiTokens.authenticate(token, requestMeta(request));
      if (!row) return null;
      return { kind: 'bearer', userId: row.user_id, tokenType: 'api_token', credentialId: row.id, scopes: scopesOf(row), orgId: row.org_id, sessionPublicId: null };
    },
  };
}
