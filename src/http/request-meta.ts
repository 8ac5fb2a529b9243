import type { FastifyRequest } from 'fastify';
import type { RequestMeta } from '../auth/flows/request-meta.js';

const MAX_USER_AGENT = 512;

/** The client address (Fastify applies TRUSTED_PROXIES) and a bounded user agent. */
export function requestMeta(request: FastifyRequest): RequestMeta {
  const agent = request.headers['user-agent'];
  return {
    ip: normalizeIp(request.ip),
    userAgent: typeof agent === 'string' && agent.length > 0 ? agent.slice(0, MAX_USER_AGENT) : null,
    requestId: request.id,
  };
}

/** ::ffff:1.2.3.4 → 1.2.3.4, so a v4 client has one address everywhere. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
