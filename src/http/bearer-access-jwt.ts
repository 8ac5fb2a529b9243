import type { Services } from '../services.js';
import { COMPACT_JWS } from '../tokens/access-tokens.js';
import type { BearerAuth, BearerAuthenticator } from './auth.js';

/** `Authorization: Bearer <access JWT>`: verified offline, then its session or API token must still live. */
export function accessJwtAuthenticator(services: Services): BearerAuthenticator {
  return {
    async authenticate(token: string): Promise<BearerAuth | null> {
      if (!COMPACT_JWS.test(token)) return null;
      const live = await services.accessTokens.authenticate(token);
      if (!live) return null;
      const { claims, scopes, session } = live;
      return {
        kind: 'bearer', userId: claims.sub, tokenType: 'access_jwt', credentialId: claims.jti, scopes,
        orgId: claims.org_id ?? null, sessionPublicId: claims.sid ?? null, session,
      };
    },
  };
}
