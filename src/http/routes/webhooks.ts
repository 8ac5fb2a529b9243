import type { FastifyInstance } from 'fastify';
import { RampartError } from '../../errors.js';
import { isEventAction } from '../../events/catalogue.js';
import type { SecurityEventInput } from '../../events/security-events.js';
import type { Services } from '../../services.js';
import { DEFAULT_SECRET_OVERLAP_HOURS, MAX_SECRET_OVERLAP_HOURS } from '../../webhooks/webhook-service.js';
import { type AuthContext, callerAuth, requireSessionProof } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { idParamSchema } from '../schemas.js';

const orgParams = { type: 'object', additionalProperties: false, required: ['orgId'], properties: { orgId: idParamSchema } } as const;
const webhookParams = {
  type: 'object', additionalProperties: false, required: ['orgId', 'id'], properties: { orgId: idParamSchema, id: idParamSchema },
} as const;
const deliveriesSchema = {
  type: 'object',
  required: ['pending', 'abandoned', 'lastDeliveredAt', 'lastFailure'],
  properties: {
    pending: { type: 'integer' },
    abandoned: { type: 'integer' },
    lastDeliveredAt: { type: ['string', 'null'] },
    lastFailure: {
      type: ['object', 'null'],
      required: ['at', 'reason', 'status'],
      properties: { at: { type: 'string' }, reason: { type: 'string' }, status: { type: ['integer', 'null'] } },
    },
  },
} as const;

const webhookSchema = {
  type: 'object',
  required: ['id', 'url', 'events', 'createdAt', 'previousSecretExpiresAt', 'deliveries'],
  properties: {
    id: { type: 'string' }, url: { type: 'string' }, events: { type: 'array', items: { type: 'string' } }, createdAt: { type: 'string' },
    previousSecretExpiresAt: { type: ['string', 'null'] }, deliveries: deliveriesSchema,
  },
} as const;

/** A webhook with its secret: shown once, at creation and at a rollover. */
const webhookWithSecretSchema = { ...webhookSchema, required: [...webhookSchema.required, 'secret'], properties: { ...webhookSchema.properties, secret: { type: 'string' } } } as const;

/**
 * Org webhooks (API.md): owners and admins, through `assertAllowed(…, 'webhooks.read' | 'webhooks.manage')`
 * (bearer tokens need `org:read` to read, `org:admin` to change). A webhook sends the org's
 * audit events to a URL, so registering one needs a recently authenticated session (a login
 * or a step-up within 10 minutes); rolling its secret needs a step-up.
 */
export async function webhookRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post<{ Params: { orgId: string }; Body: { url: string; events: string[] } }>('/v1/orgs/:orgId/webhooks', {
    config: { auth: 'user', scope: 'org:admin' },
    schema: {
      params: orgParams,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'events'],
        properties: {
          url: { type: 'string', minLength: 8, maxLength: 2048 },
          events: {
            type: 'array', minItems: 1, maxItems: 64, uniqueItems: true,
            items: { type: 'string', minLength: 1, maxLength: 64, pattern: '^(\\*|[a-z_]+\\.[a-z_]+)$' },
          },
        },
      },
      response: { 201: webhookWithSecretSchema },
    },
  }, async (request, reply) => {
    const { orgId } = request.params;
    const auth = callerAuth(request);
    const meta = requestMeta(request);
    await services.orgs.assertAllowed(auth, orgId, 'webhooks.manage', meta);
    // A receiver of the org's events outlives the session: only a recently authenticated one (a
    // login or a step-up within 10 minutes) adds it, not a cookie stolen from an old session.
    requireSessionProof(auth, services, 'recent');
    const unknown = request.body.events.filter((event) => event !== '*' && !isEventAction(event));
    if (unknown.length > 0) throw new RampartError('invalid_request', { publicDetail: `Unknown event actions: ${unknown.join(', ')} (see docs/events.md).` });
    return reply.code(201).send(await services.webhooks.create(orgId, actorOf(auth), request.body, meta));
  });

  // Reads: `org:read` (API.md: reads under the org that the owner's role allows; the role gate below).
  app.get<{ Params: { orgId: string } }>('/v1/orgs/:orgId/webhooks', {
    config: { auth: 'user', scope: ['org:read', 'org:admin'] },
    schema: { params: orgParams, response: { 200: { type: 'object', required: ['webhooks'], properties: { webhooks: { type: 'array', items: webhookSchema } } } } },
  }, async (request) => {
    const { orgId } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'webhooks.read', requestMeta(request));
    return { webhooks: await services.webhooks.list(orgId) };
  });

  app.get<{ Params: { orgId: string; id: string } }>('/v1/orgs/:orgId/webhooks/:id', {
    config: { auth: 'user', scope: ['org:read', 'org:admin'] },
    schema: { params: webhookParams, response: { 200: webhookSchema } },
  }, async (request) => {
    const { orgId, id } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'webhooks.read', requestMeta(request));
    return services.webhooks.get(orgId, id);
  });

  // A rollover (no downtime for receivers): the new secret is answered once; the previous one
  // keeps signing beside it for `overlapHours` (default 24, 0 after a leak). A sensitive change
  // like registering: a session needs a recent step-up.
  app.post<{ Params: { orgId: string; id: string }; Body: { overlapHours?: number } }>('/v1/orgs/:orgId/webhooks/:id/rotate-secret', {
    config: { auth: 'user', scope: 'org:admin' },
    schema: {
      params: webhookParams,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: { overlapHours: { type: 'integer', minimum: 0, maximum: MAX_SECRET_OVERLAP_HOURS } },
      },
      response: { 200: webhookWithSecretSchema },
    },
    // The body is optional: none means the default overlap.
    preValidation: (request, _reply, done) => {
      request.body ??= {};
      done();
    },
  }, async (request) => {
    const { orgId, id } = request.params;
    const auth = callerAuth(request);
    const meta = requestMeta(request);
    await services.orgs.assertAllowed(auth, orgId, 'webhooks.manage', meta);
    requireSessionProof(auth, services, 'step-up');
    return services.webhooks.rollSecret(orgId, id, actorOf(auth), request.body.overlapHours ?? DEFAULT_SECRET_OVERLAP_HOURS, meta);
  });

  // Abandoned deliveries (every retry failed) queued again, once the receiver works: each keeps
  // its delivery id. Nothing new leaves Rampart (the events already matched this webhook).
  app.post<{ Params: { orgId: string; id: string } }>('/v1/orgs/:orgId/webhooks/:id/redeliver', {
    config: { auth: 'user', scope: 'org:admin' },
    schema: { params: webhookParams, response: { 200: { type: 'object', required: ['requeued'], properties: { requeued: { type: 'integer' } } } } },
  }, async (request) => {
    const { orgId, id } = request.params;
    const auth = callerAuth(request);
    const meta = requestMeta(request);
    await services.orgs.assertAllowed(auth, orgId, 'webhooks.manage', meta);
    return services.webhooks.redeliverAbandoned(orgId, id, actorOf(auth), meta);
  });

  app.delete<{ Params: { orgId: string; id: string } }>('/v1/orgs/:orgId/webhooks/:id', {
    config: { auth: 'user', scope: 'org:admin' },
    schema: { params: webhookParams, response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    const { orgId, id } = request.params;
    const auth = callerAuth(request);
    const meta = requestMeta(request);
    await services.orgs.assertAllowed(auth, orgId, 'webhooks.manage', meta);
    await services.webhooks.remove(orgId, id, actorOf(auth), meta);
    return reply.code(204).send();
  });
}

/** Who the audit names for a webhook change: the user of a session, or the token. */
function actorOf(auth: AuthContext): SecurityEventInput['actor'] {
  return auth.kind === 'session' ? { type: 'user', id: auth.userId } : { type: 'token', id: auth.credentialId };
}
