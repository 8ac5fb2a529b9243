import type { FastifyInstance } from 'fastify';
import { MAX_MEMBERS_PAGE } from '../../orgs/org-service.js';
import { ORG_ROLES, type OrgRole } from '../../orgs/permissions.js';
import { orgPolicySchema, orgPolicyUpdateSchema, type OrgPolicy } from '../../policy/org-policy.js';
import type { Services } from '../../services.js';
import { callerAuth, requireSessionProof, sessionAuth } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { emailSchema, idParamSchema } from '../schemas.js';

const orgNameSchema = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\p{Cc}\\u2028\\u2029<>]+$' } as const;
/** Lower-case letters, digits and inner hyphens (a DNS label). */
const slugSchema = { type: 'string', minLength: 2, maxLength: 63, pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$' } as const;
const roleSchema = { type: 'string', enum: [...ORG_ROLES] } as const;

const orgSchema = {
  type: 'object',
  required: ['id', 'name', 'slug', 'createdAt'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, slug: { type: 'string' }, createdAt: { type: 'string' }, role: { type: 'string' } },
} as const;

const memberSchema = {
  type: 'object',
  required: ['userId', 'email', 'name', 'role', 'mfaEnabled'],
  properties: { userId: { type: 'string' }, email: { type: 'string' }, name: { type: ['string', 'null'] }, role: { type: 'string' }, mfaEnabled: { type: 'boolean' } },
} as const;

const orgParams = { type: 'object', additionalProperties: false, required: ['orgId'], properties: { orgId: idParamSchema } } as const;
const memberParams = {
  type: 'object', additionalProperties: false, required: ['orgId', 'userId'], properties: { orgId: idParamSchema, userId: idParamSchema },
} as const;

/**
 * Organizations (API.md "Organizations"). Handlers stay thin: every decision on
 * roles is `services.orgs.assertAllowed` (the one permission table), and the
 * guard below answers 404 to anyone who is not a member before any handler runs.
 *
 * EVERY org-scoped route lives under `/v1/orgs/:orgId/…` and names its param
 * `orgId`: that is what puts it behind the membership and IP-allowlist guard
 * and into the tenant-isolation walk (test/security/cross-tenant-access.test.ts).
 */
export async function orgRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.rampart.authGuards.push(async (request, auth) => {
    const params = request.params as Record<string, unknown> | undefined;
    const orgId = typeof params?.['orgId'] === 'string' ? params['orgId'] : null;
    if (orgId === null && !(auth.kind === 'bearer' && auth.orgId)) return;
    await services.orgs.assertRequestAllowed(auth, orgId, requestMeta(request), auth.kind === 'session' ? auth.session : null);
  });

  app.post<{ Body: { name: string; slug: string } }>('/v1/orgs', {
    config: { auth: 'session' },
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['name', 'slug'], properties: { name: orgNameSchema, slug: slugSchema } },
      response: { 201: { type: 'object', required: ['org'], properties: { org: orgSchema } } },
    },
  }, async (request, reply) => {
    const { userId } = sessionAuth(request);
    const org = await services.orgs.createOrg(userId, request.body, requestMeta(request));
    return reply.code(201).send({ org });
  });

  app.get<{ Params: { orgId: string } }>('/v1/orgs/:orgId', {
    config: { auth: 'user', scope: 'org:read' },
    schema: { params: orgParams, response: { 200: { type: 'object', required: ['org'], properties: { org: orgSchema } } } },
  }, async (request) => {
    const { orgId } = request.params;
    const role = await services.orgs.assertAllowed(callerAuth(request), orgId, 'org.read', requestMeta(request));
    const org = await services.orgs.getOrg(orgId);
    return { org: { ...org, role } };
  });

  // Paged like the audit log (`limit`, `after` = the previous page's `next`); the default page
  // holds MAX_MEMBERS_PAGE members, so a client that never pages sees every member of an org that size.
  app.get<{ Params: { orgId: string }; Querystring: { after?: string; limit: number } }>('/v1/orgs/:orgId/members', {
    config: { auth: 'user', scope: 'org:read' },
    schema: {
      params: orgParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          after: { type: 'string', maxLength: 80, pattern: '^[0-9]{1,15}\\.[A-Za-z0-9_-]{1,64}$' },
          limit: { type: 'integer', minimum: 1, maximum: MAX_MEMBERS_PAGE, default: MAX_MEMBERS_PAGE },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['members', 'next'],
          properties: { members: { type: 'array', items: memberSchema }, next: { type: ['string', 'null'] } },
        },
      },
    },
  }, async (request) => {
    const { orgId } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'members.read', requestMeta(request));
    return services.orgs.listMembersPage(orgId, request.query);
  });

  app.post<{ Params: { orgId: string }; Body: { email: string; role: OrgRole } }>('/v1/orgs/:orgId/invitations', {
    // Each invitation mails an address the caller chose: the inviter's mail budget counts it.
    config: { auth: 'user', scope: 'org:admin', rateLimit: 'mail' },
    schema: {
      params: orgParams,
      body: { type: 'object', additionalProperties: false, required: ['email', 'role'], properties: { email: emailSchema, role: roleSchema } },
      response: { 201: { type: 'object', required: ['id', 'expiresAt'], properties: { id: { type: 'string' }, expiresAt: { type: 'string' } } } },
    },
  }, async (request, reply) => {
    const invitation = await services.orgs.invite(callerAuth(request), request.params.orgId, request.body, requestMeta(request));
    return reply.code(201).send(invitation);
  });

  app.post<{ Body: { token: string } }>('/v1/invitations/accept', {
    config: { auth: 'session' },
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['token'], properties: { token: { type: 'string', minLength: 1, maxLength: 128 } } },
      response: { 200: { type: 'object', required: ['org'], properties: { org: orgSchema } } },
    },
  }, async (request) => {
    const { userId } = sessionAuth(request);
    return { org: await services.orgs.acceptInvitation(userId, request.body.token, requestMeta(request)) };
  });

  app.patch<{ Params: { orgId: string; userId: string }; Body: { role: OrgRole } }>('/v1/orgs/:orgId/members/:userId', {
    config: { auth: 'user', scope: 'org:admin' },
    schema: {
      params: memberParams,
      body: { type: 'object', additionalProperties: false, required: ['role'], properties: { role: roleSchema } },
      response: { 200: { type: 'object', required: ['member'], properties: { member: memberSchema } } },
    },
  }, async (request) => {
    const { orgId, userId } = request.params;
    return { member: await services.orgs.changeRole(callerAuth(request), orgId, userId, request.body.role, requestMeta(request)) };
  });

  app.delete<{ Params: { orgId: string; userId: string } }>('/v1/orgs/:orgId/members/:userId', {
    config: { auth: 'user', scope: 'org:admin' },
    schema: { params: memberParams, response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    const { orgId, userId } = request.params;
    await services.orgs.removeMember(callerAuth(request), orgId, userId, requestMeta(request));
    return reply.code(204).send();
  });

  app.get<{ Params: { orgId: string } }>('/v1/orgs/:orgId/policy', {
    config: { auth: 'user', scope: 'org:read' },
    schema: { params: orgParams, response: { 200: orgPolicySchema } },
  }, async (request) => {
    const { orgId } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'policy.read', requestMeta(request));
    return services.orgs.getPolicy(orgId);
  });

  app.put<{ Params: { orgId: string }; Querystring: { force?: boolean }; Body: OrgPolicy }>('/v1/orgs/:orgId/policy', {
    // API.md: `org:admin` grants policy changes; a session also needs a step-up (a token cannot give one).
    config: { auth: 'user', scope: 'org:admin' },
    schema: {
      params: orgParams,
      querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean' } } },
      body: orgPolicyUpdateSchema,
      response: { 200: orgPolicySchema },
    },
  }, async (request) => {
    const { orgId } = request.params;
    const meta = requestMeta(request);
    // The role first (a member learns "forbidden", not "re-authenticate"), then the step-up.
    const auth = callerAuth(request);
    await services.orgs.assertAllowed(auth, orgId, 'policy.update', meta);
    requireSessionProof(auth, services, 'step-up');
    return services.orgs.updatePolicy(auth, orgId, request.body, { force: request.query.force === true, meta });
  });
}
