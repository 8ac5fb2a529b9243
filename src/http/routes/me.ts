import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { sessionAuth, setSessionCookie } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { passwordSchema } from '../schemas.js';

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
}
