import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';
import { MAX_ASSUMPTION_MINUTES, STAFF_ROLES, type StaffAction } from '../../staff/staff-roles.js';
import type { StaffActing } from '../../staff/staff-service.js';
import { requireStepUp, sessionAuth, setSessionCookie } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { emailSchema, idParamSchema } from '../schemas.js';
import { type AuditPageQuery, auditPageFilter, auditPageQueryProperties, auditPageResponse } from './audit.js';

/** Why the role is needed: it goes to the audit log with every action taken under it. */
const reasonSchema = { type: 'string', minLength: 5, maxLength: 500, pattern: '^[^\\p{Cc}\\u2028\\u2029]+$' } as const;
const userParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: idParamSchema } } as const;
const staffUserSchema = {
  type: 'object',
  required: ['id', 'email', 'name', 'status', 'emailVerified', 'mfaEnabled', 'createdAt'],
  properties: {
    id: { type: 'string' }, email: { type: 'string' }, name: { type: ['string', 'null'] }, status: { type: 'string' },
    emailVerified: { type: 'boolean' }, mfaEnabled: { type: 'boolean' }, createdAt: { type: 'string' },
  },
} as const;

/**
 * Staff routes (API.md "Staff"). Sessions only: no token can use or assume a
 * staff role. Every route but /assume starts with `services.staff.assertActing`,
 * the one check against the staff permission table.
 */
export async function adminRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const acting = (request: FastifyRequest, action: StaffAction): Promise<StaffActing> =>
    services.staff.assertActing(sessionAuth(request).session, action, requestMeta(request));

  app.post<{ Body: { role: string; reason: string; minutes?: number } }>('/v1/admin/assume', {
    config: { auth: 'session' },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['role', 'reason'],
        properties: {
          role: { type: 'string', enum: [...STAFF_ROLES] },
          reason: reasonSchema,
          minutes: { type: 'integer', minimum: 1, maximum: MAX_ASSUMPTION_MINUTES },
        },
      },
      response: { 200: { type: 'object', required: ['role', 'expiresAt'], properties: { role: { type: 'string' }, expiresAt: { type: 'string' } } } },
    },
  }, async (request, reply) => {
    const { session } = requireStepUp(request, services);
    const assumed = await services.staff.assume(session, request.body, requestMeta(request));
    // A privilege change: the session gets a new secret.
    setSessionCookie(reply, assumed.secret, session.expires_at);
    return { role: assumed.role, expiresAt: assumed.expiresAt };
  });

  app.delete('/v1/admin/assume', {
    config: { auth: 'session' },
    schema: { response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    await services.staff.release(sessionAuth(request).session, requestMeta(request));
    return reply.code(204).send();
  });

  app.get<{ Querystring: { email: string } }>('/v1/admin/users', {
    config: { auth: 'session' },
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: emailSchema } },
      response: { 200: { type: 'object', required: ['users'], properties: { users: { type: 'array', items: staffUserSchema } } } },
    },
  }, async (request) => {
    const staff = await acting(request, 'users.read');
    return { users: await services.staff.findUsersByEmail(staff, request.query.email, requestMeta(request)) };
  });

  const userActions = [
    ['lock', 'users.lock', (staff: StaffActing, id: string, request: FastifyRequest) => services.staff.lockUser(staff, id, requestMeta(request))],
    ['unlock', 'users.unlock', (staff: StaffActing, id: string, request: FastifyRequest) => services.staff.unlockUser(staff, id, requestMeta(request))],
    ['reset-mfa', 'users.reset_mfa', (staff: StaffActing, id: string, request: FastifyRequest) => services.staff.resetMfa(staff, id, requestMeta(request))],
  ] as const;
  for (const [path, action, perform] of userActions) {
    app.post<{ Params: { id: string } }>(`/v1/admin/users/:id/${path}`, {
      config: { auth: 'session' },
      schema: { params: userParams, response: { 204: { type: 'null' } } },
    }, async (request, reply) => {
      const staff = await acting(request, action);
      await perform(staff, request.params.id, request);
      return reply.code(204).send();
    });
  }

  app.get<{ Querystring: AuditPageQuery & { orgId?: string } }>('/v1/admin/audit', {
    config: { auth: 'session' },
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { ...auditPageQueryProperties, orgId: idParamSchema } },
      response: auditPageResponse,
    },
  }, async (request) => {
    const staff = await acting(request, 'audit.read');
    await services.staff.recordAuditRead(staff, requestMeta(request), { filter: request.query });
    return services.audit.list({ ...auditPageFilter(request.query), orgId: request.query.orgId });
  });
}
