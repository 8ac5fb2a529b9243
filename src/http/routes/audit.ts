import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AuditEvent } from '../../audit/chain.js';
import type { Services } from '../../services.js';
import { callerAuth } from '../auth.js';
import { requestMeta } from '../request-meta.js';
import { idParamSchema } from '../schemas.js';

const refSchema = { type: ['object', 'null'], required: ['type', 'id'], properties: { type: { type: 'string' }, id: { type: ['string', 'null'] } } } as const;

/** An audit event as API.md shows it (plus requestId). */
export const auditEventSchema = {
  type: 'object',
  required: ['id', 'seq', 'time', 'orgId', 'actor', 'action', 'target', 'ip', 'userAgent', 'outcome', 'details', 'requestId', 'prevHash', 'hash'],
  properties: {
    id: { type: 'string' },
    seq: { type: 'integer' },
    time: { type: 'string' },
    orgId: { type: ['string', 'null'] },
    actor: refSchema,
    action: { type: 'string' },
    target: refSchema,
    ip: { type: ['string', 'null'] },
    userAgent: { type: ['string', 'null'] },
    outcome: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
    requestId: { type: ['string', 'null'] },
    prevHash: { type: 'string' },
    hash: { type: 'string' },
  },
} as const;

const orgParams = { type: 'object', additionalProperties: false, required: ['orgId'], properties: { orgId: idParamSchema } } as const;
/** A seq cursor (the `next` of the previous page). */
const cursorSchema = { type: 'string', pattern: '^[0-9]{1,15}$' } as const;
const actionFilterSchema = { type: 'string', minLength: 3, maxLength: 64, pattern: '^[a-z_]+\\.[a-z_]+$' } as const;

/** The query string of one page of audit events (the org's log here, every org's in admin.ts). */
export interface AuditPageQuery {
  after?: string;
  limit: number;
  action?: string;
  actorId?: string;
}
export const auditPageQueryProperties = {
  after: cursorSchema,
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  action: actionFilterSchema,
  actorId: idParamSchema,
} as const;
export const auditPageResponse = {
  200: {
    type: 'object',
    required: ['events', 'next'],
    properties: { events: { type: 'array', items: auditEventSchema }, next: { type: ['string', 'null'] } },
  },
} as const;

/** The page filter for `AuditLog.list` (the cursor is a seq). */
export function auditPageFilter({ after, limit, action, actorId }: AuditPageQuery): { after?: number; limit: number; action?: string; actorId?: string } {
  return { after: after === undefined ? undefined : Number(after), limit, action, actorId };
}

/**
 * An org's audit log (API.md): admin, owner and auditor, through the one
 * permission check (`audit.read`; bearer tokens need `audit:read`). Nothing here
 * or anywhere in the API updates or deletes an event.
 */
export async function auditRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get<{ Params: { orgId: string }; Querystring: AuditPageQuery }>('/v1/orgs/:orgId/audit', {
    config: { auth: 'user', scope: 'audit:read' },
    schema: {
      params: orgParams,
      querystring: { type: 'object', additionalProperties: false, properties: auditPageQueryProperties },
      response: auditPageResponse,
    },
  }, async (request) => {
    const { orgId } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'audit.read', requestMeta(request));
    return services.audit.list({ ...auditPageFilter(request.query), orgId });
  });

  /**
   * NDJSON, one event per line, streamed page by page with back-pressure: memory
   * stays constant however long the log is.
   */
  app.get<{ Params: { orgId: string } }>('/v1/orgs/:orgId/audit/export', {
    config: { auth: 'user', scope: 'audit:read' },
    schema: { params: orgParams, response: { 200: { type: 'string', description: 'application/x-ndjson stream of audit events' } } },
  }, async (request, reply) => {
    const { orgId } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'audit.read', requestMeta(request));
    const events = services.audit.stream({ orgId });
    async function* lines(): AsyncGenerator<string> {
      let batch = '';
      for await (const event of events) {
        batch += `${JSON.stringify(event satisfies AuditEvent)}\n`;
        if (batch.length >= 64 * 1024) {
          yield batch;
          batch = '';
        }
      }
      if (batch) yield batch;
    }
    return reply
      .type('application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="audit-${orgId}.ndjson"`)
      .send(Readable.from(lines(), { objectMode: false }));
  });

  app.get<{ Params: { orgId: string } }>('/v1/orgs/:orgId/audit/verify', {
    config: { auth: 'user', scope: 'audit:read' },
    schema: {
      params: orgParams,
      response: {
        200: {
          type: 'object',
          required: ['valid', 'count', 'headHash'],
          properties: {
            valid: { type: 'boolean' },
            count: { type: 'integer' },
            headHash: { type: 'string' },
            headSeq: { type: 'integer' },
            brokenAt: { type: ['integer', 'null'] },
          },
        },
      },
    },
  }, async (request) => {
    const { orgId } = request.params;
    await services.orgs.assertAllowed(callerAuth(request), orgId, 'audit.read', requestMeta(request));
    const result = await services.audit.verifyShared(orgId);
    return { valid: result.valid, count: result.count, headHash: result.headHash, headSeq: result.headSeq, brokenAt: result.broken?.seq ?? null };
  });

  /** The user's own security feed (API.md): logins, failures against the account, alerts, changes; newest first. */
  app.get<{ Querystring: { before?: string; limit: number } }>('/v1/me/security-events', {
    config: { auth: 'user', scope: 'profile:read' },
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { before: cursorSchema, limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
      },
      response: {
        200: {
          type: 'object',
          required: ['events', 'next'],
          properties: {
            events: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'time', 'action', 'ip', 'userAgent', 'details'],
                properties: {
                  id: { type: 'string' },
                  time: { type: 'string' },
                  action: { type: 'string' },
                  outcome: { type: 'string' },
                  ip: { type: ['string', 'null'] },
                  userAgent: { type: ['string', 'null'] },
                  details: { type: 'object', additionalProperties: true },
                },
              },
            },
            next: { type: ['string', 'null'] },
          },
        },
      },
    },
  }, async (request) => {
    const { userId } = callerAuth(request);
    const { before, limit } = request.query;
    return services.audit.latest({ userId, before: before === undefined ? undefined : Number(before), limit });
  });
}
