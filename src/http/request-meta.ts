import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import { RampartError } from '../errors.js';

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

/**
 * With TRUSTED_PROXIES, the client address is what the proxy put in X-Forwarded-For.
 * A value that is not an IP address (`203.0.113.5:4711` from a proxy that adds the
 * source port, `unknown`, a client's header passed on as is) would be a fresh
 * rate-limit budget and login back-off per distinct string, and would be stored as the
 * session's and the audit log's address: it is refused before anything is counted.
 * Registered only when proxies are trusted (otherwise the address is the socket's).
 */
export function refuseUnparsableForwardedAddress(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  if (isIP(request.ip) !== 0) return done();
  done(new RampartError('invalid_request', {
    publicDetail: 'The client address forwarded by the proxy is not an IP address.',
    detail: 'X-Forwarded-For from a trusted proxy is not an IP address',
  }));
}
