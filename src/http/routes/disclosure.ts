import type { FastifyInstance } from 'fastify';
import { renderSecurityPage, renderSecurityTxt, SECURITY_PAGE_STYLE_HASH } from '../../disclosure/security-page.js';
import type { Services } from '../../services.js';

/** Public, cacheable pages: the security page and RFC 9116 security.txt. */
export async function disclosureRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const input = () => ({ config: services.config, publicUrl: services.publicUrl, now: services.clock.now() });

  app.get('/security', { config: { auth: 'none' } }, async (_request, reply) => {
    return reply
      .header('cache-control', 'public, max-age=300')
      .header('content-security-policy', `default-src 'none'; style-src ${SECURITY_PAGE_STYLE_HASH}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`)
      .type('text/html; charset=utf-8')
      .send(renderSecurityPage(input()));
  });

  app.get('/.well-known/security.txt', { config: { auth: 'none' } }, async (_request, reply) => {
    return reply.header('cache-control', 'public, max-age=3600').type('text/plain; charset=utf-8').send(renderSecurityTxt(input()));
  });
}
