import type { OrgRole } from '../../src/orgs/permissions.js';
import type { SecurityEvent } from '../../src/events/security-events.js';
import type { TestClient } from './client.js';
import { signUp, type TestServer } from './harness.js';

export interface OrgUser {
  client: TestClient;
  email: string;
  password: string;
  userId: string;
}

export interface OrgFixture {
  orgId: string;
  slug: string;
  users: Record<OrgRole, OrgUser>;
}

let slugCounter = 0;

export function uniqueSlug(label = 'org'): string {
  slugCounter++;
  return `${label}-${process.pid}-${slugCounter}-${Math.random().toString(36).slice(2, 7)}`;
}

/**
 * An org with one signed-in user per role: the owner creates it over HTTP, the
 * others are added directly through the service (invitations have their own tests).
 */
export async function createOrgWithRoles(t: TestServer, label = 'org'): Promise<OrgFixture> {
  const owner = await signUp(t, `${label}-owner`);
  const slug = uniqueSlug(label);
  const created = await owner.client.post('/v1/orgs', { name: `Org ${label} ${slug.slice(-5)}`, slug });
  if (created.status !== 201) throw new Error(`org creation failed: ${created.status} ${created.text}`);
  const orgId: string = created.body.org.id;
  const users = { owner } as Record<OrgRole, OrgUser>;
  for (const role of ['admin', 'auditor', 'member'] as const) {
    const user = await signUp(t, `${label}-${role}`);
    await t.server.services.orgs.addMember(orgId, user.userId, role, { type: 'system', id: null });
    users[role] = user;
  }
  return { orgId, slug, users };
}

/** Re-authenticates (step-up) a signed-in user with their password. */
export async function stepUp(user: OrgUser): Promise<void> {
  const response = await user.client.post('/v1/me/reauth', { password: user.password });
  if (response.status !== 204) throw new Error(`step-up failed: ${response.status} ${response.text}`);
}

/** Records every security event (and whether it was written inside a transaction). */
export function captureEvents(t: TestServer): Array<SecurityEvent & { inTransaction: boolean }> {
  const events: Array<SecurityEvent & { inTransaction: boolean }> = [];
  t.server.services.events.addSink({
    record(event, transaction) {
      events.push({ ...structuredClone(event), inTransaction: transaction !== undefined });
    },
  });
  return events;
}
