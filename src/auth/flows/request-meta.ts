/** Facts about the HTTP request that flows need, without importing Fastify. */
export interface RequestMeta {
  /** The client address (socket, or X-Forwarded-For from a trusted proxy only). */
  ip: string;
  userAgent: string | null;
}
