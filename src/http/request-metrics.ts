import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';

/** Request latency by method, route pattern (never the raw path: no ids or personal data) and status class. */
export function registerRequestMetrics(app: FastifyInstance, services: Services): void {
  app.addHook('onResponse', async (request, reply) => {
    services.metrics.requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` },
      reply.elapsedTime / 1000,
    );
  });
}
