import type { FastifyInstance } from 'fastify';
import { RampartError } from '../../errors.js';
import type { Services } from '../../services.js';
import { exportUserData } from '../../users/data-export.js';
import { callerAuth, sessionAuth, setSessionCookie } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { passwordSchema, userSchema } from '../schemas.js';

export async function meRoutes(app: FastifyInstance, services: Services): Promise<void> {
  /**
   * Step-up. The session gets a new secret (a new cookie in this response); the
   * CSRF token is bound to the session's public id and stays valid.
   */
  app.post<{ Body: { password?: string; totp?: string } }>('/v1/me/reauth', {
    config: { auth: 'session', allowDuringMfaEnrollment: true },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: { password: passwordSchema, totp: { type: 'string', minLength: 6, maxLength: 8, pattern: '^[0-9]+$' } },
      },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    const { session } = sessionAuth(request);
    const [method, value] = request.body.password !== undefined ? ['password', request.body.password] : ['totp', request.body.totp!];
    const rotated = await services.stepUp.reauthenticate(session, method, value, requestMeta(request));
    setSessionCookie(reply, rotated.secret, session.expires_at);
    return reply.code(204).send();
  });

  const nullableString = { type: ['string', 'null'] };
  const object = (properties: Record<string, unknown>) => ({ type: 'object', required: Object.keys(properties), properties });
  /** The user's own data as one JSON document (a download): no credential of any kind is in it. */
  app.get('/v1/me/export', {
    // API.md: `profile:read` grants reads under /v1/me; the export is audited (`user.data_exported`).
    config: { auth: 'user', scope: 'profile:read' },
    schema: {
      response: {
        200: object({
          format: { type: 'string' },
          exportedAt: { type: 'string' },
          user: userSchema,
          sessions: { type: 'array', items: object({ id: { type: 'string' }, createdAt: { type: 'string' }, lastSeenAt: { type: 'string' }, expiresAt: { type: 'string' }, mfaVerified: { type: 'boolean' }, ip: nullableString, userAgent: nullableString }) },
          organizations: { type: 'array', items: object({ id: { type: 'string' }, name: { type: 'string' }, slug: { type: 'string' }, role: { type: 'string' } }) },
          secondFactors: object({
            totp: { type: 'boolean' },
            webauthn: { type: 'array', items: object({ id: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'string' } }) },
            recoveryCodesLeft: { type: 'integer' },
          }),
          apiTokens: { type: 'array', items: object({ id: { type: 'string' }, name: { type: 'string' }, prefix: { type: 'string' }, scopes: { type: 'array', items: { type: 'string' } }, orgId: nullableString, createdAt: { type: 'string' }, expiresAt: nullableString, lastUsedAt: nullableString, lastUsedIp: nullableString }) },
          securityEvents: { type: 'array', items: object({ id: { type: 'string' }, time: { type: 'string' }, action: { type: 'string' }, outcome: { type: 'string' }, ip: nullableString, userAgent: nullableString, details: { type: 'object', additionalProperties: true } }) },
          securityEventsTruncated: { type: 'boolean' },
        }),
      },
    },
  }, async (request, reply) => {
    const auth = callerAuth(request);
    const { userId } = auth;
    const meta = requestMeta(request);
    const data = await exportUserData(services, userId);
    if (!data) throw new RampartError('unauthenticated');
    await services.events.record({
      action: 'user.data_exported', actor: auth.kind === 'session' ? { type: 'user', id: userId } : { type: 'token', id: auth.credentialId },
      target: { type: 'user', id: userId },
      origin: meta, outcome: 'success', details: { securityEvents: data.securityEvents.length },
    });
    void reply.header('content-disposition', 'attachment; filename="rampart-export.json"');
    return data;
  });
}
