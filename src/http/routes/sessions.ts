import type { FastifyInstance } from 'fastify';
import { RampartError } from '../../errors.js';
import type { Services } from '../../services.js';
import { clearSessionCookie, sessionAuth } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { idParamSchema, sessionSchema } from '../schemas.js';
import { toPublicSession } from '../../sessions/public-session.js';

export async function sessionRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get('/v1/me/sessions', {
    config: { auth: 'user', scope: 'profile:read' },
    schema: {
      response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } } },
    },
  }, async (request) => {
    const auth = request.auth!;
    const profile = await services.pii.getProfile(auth.userId);
    if (!profile) throw new RampartError('unauthenticated');
    const currentId = auth.kind === 'session' ? auth.session.public_id : null;
    const rows = await services.sessions.list(auth.userId, profile);
    return { sessions: rows.map((row) => ({ ...toPublicSession(services.sessions, row, profile), current: row.public_id === currentId })) };
  });

  app.delete<{ Params: { id: string } }>('/v1/me/sessions/:id', {
    config: { auth: 'session' },
    schema: {
      params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: idParamSchema } },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    const { userId, session } = sessionAuth(request);
    await services.sessions.endOwnByPublicId(userId, request.params.id, requestMeta(request));
    // The caller ended its own session: the browser's side ends as at logout.
    if (request.params.id === session.public_id) clearSessionCookie(reply);
    return reply.code(204).send();
  });

  app.delete('/v1/me/sessions', {
    config: { auth: 'session' },
    schema: { response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    const { userId, session } = sessionAuth(request);
    await services.sessions.endAllOthers(userId, session.id_hash, requestMeta(request));
    return reply.code(204).send();
  });
}
