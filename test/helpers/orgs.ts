import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OrgRole } from '../../src/orgs/permissions.js';
import type { SecurityEvent } from '../../src/events/security-events.js';
import type { TestClient } from './client.js';
import { randomId } from '../../src/crypto/random.js';
import { signUp, type TestServer, uniqueEmail } from './harness.js';

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

/** The decoded text bodies of the outbox mail sent to `to` (newest last). */
export function outboxMailTo(t: TestServer, to: string): string[] {
  const dir = join(t.dataDir, 'outbox');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((file) => readFileSync(join(dir, file), 'utf8'))
    .filter((raw) => new RegExp(`^To: ${to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r?$`, 'mi').test(raw))
    .map(decodeQuotedPrintable);
}

/** Every invitation token mailed to `to`. */
export function invitationTokensFor(t: TestServer, to: string): string[] {
  return outboxMailTo(t, to).flatMap((mail) => [...mail.matchAll(/\/invitations\/accept\?token=([A-Za-z0-9_-]+)/g)].map((m) => m[1]!));
}

/** The one invitation token mailed to `to` that is not in `known`. */
export function invitationTokenFor(t: TestServer, to: string, known: readonly string[] = []): string {
  const fresh = invitationTokensFor(t, to).filter((token) => !known.includes(token));
  if (fresh.length !== 1) throw new Error(`expected one new invitation to ${to}, found ${fresh.length}`);
  return fresh[0]!;
}

/** Decodes a quoted-printable message; 7bit mail (plain ASCII, how links go out) is returned as is. */
function decodeQuotedPrintable(raw: string): string {
  // Only when the message says so: in 7bit text "token=A2…" is not an escape.
  if (!/^Content-Transfer-Encoding:\s*quoted-printable\s*$/im.test(raw)) return raw;
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * A user with a profile but no usable password (no argon2 cost): a member to
 * list, change or remove, never to sign in.
 */
export async function createBareUser(t: TestServer, label = 'bare'): Promise<string> {
  const { services } = t.server;
  const userId = randomId('usr');
  const now = t.clock.now();
  await services.pii.createProfile(userId, uniqueEmail(label), `Bare ${label}`);
  await services.users.insert({
    id: userId, status: 'active', password_hash: '!', password_changed_at: now,
    email_verified: 0, mfa_enabled: 0, created_at: now, updated_at: now,
  });
  return userId;
}

/** An API token of a signed-in (and stepped-up) user. */
export async function createToken(user: OrgUser, scopes: string[], orgId?: string): Promise<string> {
  const response = await user.client.post('/v1/me/tokens', { name: `test ${scopes.join(' ')}`, scopes, ...(orgId ? { orgId } : {}) });
  if (response.status !== 201) throw new Error(`token creation failed: ${response.status} ${response.text}`);
  return response.body.token;
}
