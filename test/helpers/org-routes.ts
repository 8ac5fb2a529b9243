/**
 * THE list of org-scoped routes the tenant-isolation walk drives
 * (test/security/cross-tenant-access.test.ts). Every route that names an org
 * by an `orgId` (in its path, body or query string, as the app's route table
 * reports it) must have a sample here: the walk discovers the registered
 * routes and fails, naming the route, until it has one. When you add an org
 * route (audit, webhooks…), add its sample with the roles API.md gives it.
 *
 * `allowed` is written from API.md, not derived from src/orgs/permissions.ts,
 * so that the walk checks the table rather than repeating it.
 */
import { randomId } from '../../src/crypto/random.js';
import type { OrgRole } from '../../src/orgs/permissions.js';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { type TestServer, uniqueEmail } from './harness.js';

export interface OrgRouteContext {
  t: TestServer;
  /** The org the request targets. */
  orgId: string;
  /** A member of `orgId` (role member) that samples may change. */
  memberId: string;
  /** Ids of objects that belong to ANOTHER org, for "a foreign id answers like a missing one". */
  foreign: { orgId: string; memberId: string };
  /** A fresh member of `orgId` (role member), e.g. as something to delete. */
  newMember(): Promise<string>;
}

export interface OrgRouteRequest {
  /** Path params other than orgId. */
  params?: Record<string, string>;
  body?: unknown;
  /** Query string without '?'. */
  query?: string;
}

export interface OrgRouteSample {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The path as registered, e.g. /v1/orgs/:orgId/members/:userId. */
  url: string;
  /** Roles that may call it, per API.md; every other role must get 403. */
  allowed: readonly OrgRole[];
  /** The status an allowed role gets. */
  ok: number;
  /** Needs a recent step-up (the walk steps every session up first). */
  stepUp?: boolean;
  /** A valid request, built fresh for each call (it may create what it acts on). */
  build(ctx: OrgRouteContext): Promise<OrgRouteRequest> | OrgRouteRequest;
  /** The same request naming another org's objects, for routes with ids beyond orgId. */
  foreign?(ctx: OrgRouteContext): OrgRouteRequest;
}

const ALL: readonly OrgRole[] = ['owner', 'admin', 'auditor', 'member'];
const ADMINS: readonly OrgRole[] = ['owner', 'admin'];
/** API.md: the audit log is for admin, owner and auditor. */
const AUDIT_READERS: readonly OrgRole[] = ['owner', 'admin', 'auditor'];

export const ORG_ROUTE_SAMPLES: readonly OrgRouteSample[] = [
  { method: 'GET', url: '/v1/orgs/:orgId', allowed: ALL, ok: 200, build: () => ({}) },
  { method: 'GET', url: '/v1/orgs/:orgId/members', allowed: ALL, ok: 200, build: () => ({}) },
  {
    method: 'POST', url: '/v1/orgs/:orgId/invitations', allowed: ADMINS, ok: 201,
    build: () => ({ body: { email: uniqueEmail('walk-invitee'), role: 'member' } }),
  },
  {
    method: 'PATCH', url: '/v1/orgs/:orgId/members/:userId', allowed: ADMINS, ok: 200,
    build: (ctx) => ({ params: { userId: ctx.memberId }, body: { role: 'auditor' } }),
    foreign: (ctx) => ({ params: { userId: ctx.foreign.memberId }, body: { role: 'auditor' } }),
  },
  {
    method: 'DELETE', url: '/v1/orgs/:orgId/members/:userId', allowed: ADMINS, ok: 204,
    build: async (ctx) => ({ params: { userId: await ctx.newMember() } }),
    foreign: (ctx) => ({ params: { userId: ctx.foreign.memberId } }),
  },
  { method: 'GET', url: '/v1/orgs/:orgId/policy', allowed: ALL, ok: 200, build: () => ({}) },
  {
    method: 'PUT', url: '/v1/orgs/:orgId/policy', allowed: ADMINS, ok: 200, stepUp: true,
    build: () => ({ body: defaultOrgPolicy() }),
  },
  { method: 'GET', url: '/v1/orgs/:orgId/audit', allowed: AUDIT_READERS, ok: 200, build: () => ({ query: 'limit=5' }) },
  { method: 'GET', url: '/v1/orgs/:orgId/audit/export', allowed: AUDIT_READERS, ok: 200, build: () => ({}) },
  { method: 'GET', url: '/v1/orgs/:orgId/audit/verify', allowed: AUDIT_READERS, ok: 200, build: () => ({}) },
  // Webhooks: a public IP literal needs no DNS; they subscribe to an event the walk never causes, so nothing is sent.
  {
    method: 'POST', url: '/v1/orgs/:orgId/webhooks', allowed: ADMINS, ok: 201, stepUp: true,
    build: () => ({ body: { url: WALK_WEBHOOK_URL, events: ['user.unlocked'] } }),
  },
  { method: 'GET', url: '/v1/orgs/:orgId/webhooks', allowed: ADMINS, ok: 200, build: () => ({}) },
  {
    method: 'GET', url: '/v1/orgs/:orgId/webhooks/:id', allowed: ADMINS, ok: 200,
    build: async (ctx) => ({ params: { id: await walkWebhook(ctx, ctx.orgId, true) } }),
    foreign: (ctx) => ({ params: { id: foreignWebhooks.get(ctx.foreign.orgId) ?? randomId('whk') } }),
  },
  {
    method: 'POST', url: '/v1/orgs/:orgId/webhooks/:id/rotate-secret', allowed: ADMINS, ok: 200, stepUp: true,
    build: async (ctx) => ({ params: { id: await walkWebhook(ctx, ctx.orgId, true) }, body: { overlapHours: 1 } }),
    foreign: (ctx) => ({ params: { id: foreignWebhooks.get(ctx.foreign.orgId) ?? randomId('whk') }, body: { overlapHours: 1 } }),
  },
  {
    method: 'POST', url: '/v1/orgs/:orgId/webhooks/:id/redeliver', allowed: ADMINS, ok: 200,
    build: async (ctx) => ({ params: { id: await walkWebhook(ctx, ctx.orgId, true) } }),
    foreign: (ctx) => ({ params: { id: foreignWebhooks.get(ctx.foreign.orgId) ?? randomId('whk') } }),
  },
  {
    method: 'DELETE', url: '/v1/orgs/:orgId/webhooks/:id', allowed: ADMINS, ok: 204,
    build: async (ctx) => ({ params: { id: await walkWebhook(ctx, ctx.orgId) } }),
    foreign: (ctx) => ({ params: { id: foreignWebhooks.get(ctx.foreign.orgId) ?? randomId('whk') } }),
  },
];

/**
 * Routes that name an org in the BODY (or query string) rather than the path:
 * the path guard cannot see that org, so the route must pass the org gate
 * itself. The walk replays each with another org's id.
 */
export interface BodyOrgRouteSample {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  /** Roles that may name their own org here, per API.md. */
  allowed: readonly OrgRole[];
  ok: number;
  build(orgId: string): OrgRouteRequest;
}

export const BODY_ORG_ROUTE_SAMPLES: readonly BodyOrgRouteSample[] = [
  // API.md: any member may bind a token to the org (it never grants more than the member's role).
  { method: 'POST', url: '/v1/me/tokens', allowed: ALL, ok: 201, build: (orgId) => ({ body: { name: 'walk', scopes: ['org:read'], orgId } }) },
];

/**
 * Routes that take an `orgId` but are not a tenant's door, each with the reason.
 * Keep this short: anything here is outside the walk.
 */
export const NOT_TENANT_ROUTES: Readonly<Record<string, string>> = {
  'GET /v1/admin/audit': 'staff only (an assumed auditor or security role reads every org, API.md "Staff"); orgId is a filter',
};

const WALK_WEBHOOK_URL = 'https://93.184.216.34/walk';
/** A webhook of the other org per walk, created by the first build (foreign() is synchronous). */
const foreignWebhooks = new Map<string, string>();
const readWebhooks = new Map<string, string>();

/** A webhook in `orgId` (a fresh one, or with `reuse` the same one each time: orgs hold at most 20). */
async function walkWebhook(ctx: OrgRouteContext, orgId: string, reuse = false): Promise<string> {
  const create = async (org: string) => (await ctx.t.server.services.webhooks.create(
    org, { type: 'system', id: null }, { url: WALK_WEBHOOK_URL, events: ['user.unlocked'] }, { ip: '127.0.0.1', userAgent: null })).id;
  if (!foreignWebhooks.has(ctx.foreign.orgId)) foreignWebhooks.set(ctx.foreign.orgId, await create(ctx.foreign.orgId));
  if (!reuse) return create(orgId);
  if (!readWebhooks.has(orgId)) readWebhooks.set(orgId, await create(orgId));
  return readWebhooks.get(orgId)!;
}

/** Fills a registered path with the org id and the request's params; unknown params get a random id. */
export function fillPath(url: string, orgId: string, request: OrgRouteRequest): string {
  const path = url.replace(/:([A-Za-z]+)/g, (_, name: string) => (name === 'orgId' ? orgId : request.params?.[name] ?? randomId('x')));
  return request.query ? `${path}?${request.query}` : path;
}
