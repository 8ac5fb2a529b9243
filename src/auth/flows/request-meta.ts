/** Facts about the HTTP request that flows need, without importing Fastify. */
export interface RequestMeta {
  /** The client address (socket, or X-Forwarded-For from a trusted proxy only). */
  ip: string;
  userAgent: string | null;
  /** The HTTP request's id (x-request-id), carried into the audit events it causes. */
  requestId?: string | null;
}
