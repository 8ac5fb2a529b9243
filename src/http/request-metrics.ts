import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';

/** Request latency by method, route pattern (never the raw path: no ids or personal data) and status class. */
export function registerRequestMetrics(app: FastifyInstance, services: Services): void {
  // A callback hook, not an async one: nothing here waits, and a promise per request is not free.
  app.addHook('onResponse', (request, reply, done) => {
    services.metrics.requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` },
      reply.elapsedTime / 1000,
    );
    done();
  });
}
