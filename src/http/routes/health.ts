import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { isStoreReachable } from '../../store/db.js';
import { sendProblem } from '../problem.js';

export async function healthRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const statusSchema = { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } };

  /** Liveness: the process answers. */
  app.get('/healthz', { config: { auth: 'none' }, schema: statusSchema }, async () => ({ status: 'ok' }));

  /** Readiness: both stores answer. */
  app.get('/readyz', { config: { auth: 'none' }, schema: statusSchema }, async (_request, reply) => {
    const [main, pii] = await Promise.all([isStoreReachable(services.stores.main), isStoreReachable(services.stores.pii)]);
    if (!main || !pii) return sendProblem(reply, 'not_ready', { detail: 'A store is unreachable.' });
    return { status: 'ok' };
  });
}
