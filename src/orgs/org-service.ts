import type { Kysely, Transaction } from 'kysely';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import { sessionSatisfiesPolicy } from '../auth/mfa/enforcement.js';
import { type Clock, iso } from '../clock.js';
import { sha256Hex } from '../crypto/hash.js';
import { withKeyVersion } from '../crypto/keyring.js';
import { randomId, randomToken } from '../crypto/random.js';
import { RampartError } from '../errors.js';
import type { SecurityEventInput, SecurityEvents } from '../events/security-events.js';
import type { Mailer } from '../mail/mailer.js';
import type { PiiService } from '../pii/pii-service.js';
import type { OrgPolicy } from '../policy/org-policy.js';
import { defaultOrgPolicy, mergePolicy } from '../policy/org-policy.js';
import { isUniqueViolation } from '../store/errors.js';
import type { OrgRepository, OrgRow } from '../store/repositories/orgs.js';
import type { MainDB } from '../store/schema.js';
import type { AddressProof } from '../auth/flows/email-verification.js';
import { isAddressAllowed } from './ip-allowlist.js';
import { ACTION_SCOPES, isOrgRole, type OrgAction, type OrgRole, roleAllows } from './permissions.js';
import { assertValidPolicy, parseStoredPolicy } from './policy-document.js';

/** API.md: invitation links live 7 days. */
export const INVITATION_TTL_MS = 7 * 24 * 3_600_000;
/**
 * Most members in one page of GET /members, and the default: each member costs a
 * PII read and decryption, so the list is bounded; an org up to this size still
 * comes in one page, as before paging existed.
 */
export const MAX_MEMBERS_PAGE = 1000;
/** A members cursor: `<joinedAt ms>.<userId>` (the position of the last member of the previous page). */
const MEMBERS_CURSOR = /^([0-9]{1,15})\.([A-Za-z0-9_-]{1,64})$/;
const INVITATION_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * Who is asking, as the HTTP layer authenticated them (structurally the
 * `AuthContext` of src/http/auth.ts; this module imports nothing of HTTP).
 */
export interface OrgCaller {
  kind: 'session' | 'bearer';
  userId: string;
  /** null for a session (every power of its user); a bearer credential's scopes otherwise. */
  scopes: readonly string[] | null;
  /** The org a bearer credential is bound to, or null/undefined. */
  orgId?: string | null;
  credentialId?: string;
}

/** What the org gate reads of a session: whether and how it proved a second factor. */
export interface SessionMfa {
  mfa_verified: number;
  mfa_method: string | null;
}

export interface Org {
  id: string;
  name: string;
  slug: string;
  createdAt: string;
}

export interface OrgMember {
  userId: string;
  email: string;
  name: string | null;
  role: OrgRole;
  mfaEnabled: boolean;
}

export interface OrgMembership {
  orgId: string;
  role: OrgRole;
  joinedAt: number;
}

/**
 * Called inside the transaction that ends a membership (e.g. to revoke tokens bound to that org),
 * with the request that ended it, so the listener's events name it too.
 */
export type MembershipEndedListener = (orgId: string, userId: string, transaction: Transaction<MainDB>, origin: RequestMeta) => Promise<void>;

/**
 * Organizations: creation, members and roles, invitations, the org policy, the
 * IP allowlist, and THE permission check (`assertAllowed`). Membership is read
 * at every request, so a removed member's sessions and tokens lose the org at once.
 */
export class OrgService {
  readonly #membershipEnded: MembershipEndedListener[] = [];

  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly repo: OrgRepository,
    private readonly pii: PiiService,
    private readonly events: SecurityEvents,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly options: { productName: string; publicUrl: () => string; maxOrgsPerUser: number; maxPendingInvitationsPerOrg: number },
  ) {}

  onMembershipEnded(listener: MembershipEndedListener): void {
    this.#membershipEnded.push(listener);
  }

  /** Called inside an acceptance's transaction, first: the invitation's mailed secret proved the user's address. */
  #addressProof: AddressProof | null = null;

  /** The one proof of address (email verification); set once at wiring. */
  setAddressProof(proof: AddressProof): void {
    this.#addressProof = proof;
  }

  // ---- reads ---------------------------------------------------------------

  async membershipsOf(userId: string): Promise<OrgMembership[]> {
    const rows = await this.repo.listMembershipsOfUser(userId);
    return rows.map((row) => ({ orgId: row.org_id, role: toRole(row.role), joinedAt: row.joined_at }));
  }

  /** See OrgRepository.holdMembership: true when the member is (still) in the org, held until `trx` ends. */
  async holdMembership(orgId: string, userId: string, trx: Transaction<MainDB>): Promise<boolean> {
    return this.repo.holdMembership(orgId, userId, trx);
  }

  async roleOf(orgId: string, userId: string, executor?: Transaction<MainDB>): Promise<OrgRole | null> {
    const row = await this.repo.findMembership(orgId, userId, executor);
    return row ? toRole(row.role) : null;
  }

  async getOrg(orgId: string): Promise<Org | null> {
    const row = await this.repo.findOrg(orgId);
    return row ? toOrg(row) : null;
  }

  async getPolicy(orgId: string): Promise<OrgPolicy> {
    const row = await this.repo.findOrg(orgId);
    if (!row) throw new RampartError('not_found');
    return parseStoredPolicy(row.policy);
  }

  /** For GET /v1/session (every page of a product asks; the memberships come from memory, see OrgRepository). */
  async orgsOfUser(userId: string): Promise<Array<{ id: string; name: string; slug: string; role: string }>> {
    const rows = await this.repo.listMembershipsOfUser(userId);
    return rows.map((row) => ({ id: row.org_id, name: row.name, slug: row.slug, role: row.role }));
  }

  /** Every member with their email and name, decrypted from the PII store under each member's data key (for notifications). */
  async listMembers(orgId: string): Promise<OrgMember[]> {
    return this.#withProfiles(await this.repo.listMembers(orgId));
  }

  /**
   * One page of members (GET /v1/orgs/{orgId}/members): at most `limit`, after
   * the cursor `after` (the `next` of the previous page); `next` is null on the
   * last page. A malformed cursor is `invalid_request`.
   */
  async listMembersPage(orgId: string, options: { after?: string; limit?: number } = {}): Promise<{ members: OrgMember[]; next: string | null }> {
    const limit = options.limit ?? MAX_MEMBERS_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_MEMBERS_PAGE) throw new RangeError(`limit must be 1..${MAX_MEMBERS_PAGE}`);
    let after: { joinedAt: number; userId: string } | null = null;
    if (options.after !== undefined) {
      const match = MEMBERS_CURSOR.exec(options.after);
      if (!match) throw new RampartError('invalid_request', { publicDetail: 'after is not a cursor from this list.' });
      after = { joinedAt: Number(match[1]), userId: match[2]! };
    }
    // One row more than asked tells whether another page follows.
    const rows = await this.repo.listMembersPage(orgId, after, limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { members: await this.#withProfiles(page), next: rows.length > limit && last ? `${last.joined_at}.${last.user_id}` : null };
  }

  async #withProfiles(rows: ReadonlyArray<{ user_id: string; role: string; mfa_enabled: number }>): Promise<OrgMember[]> {
    const members: OrgMember[] = [];
    for (const row of rows) {
      const profile = await this.pii.getProfile(row.user_id);
      if (!profile) continue; // a member whose personal data was shredded is being deleted
      members.push({ userId: row.user_id, email: profile.email, name: profile.name, role: toRole(row.role), mfaEnabled: row.mfa_enabled === 1 });
    }
    return members;
  }

  // ---- the one permission check -----------------------------------------

  /**
   * THE permission check of every org route. Non-members, unknown orgs and
   * tokens bound to another org all get `not_found`, exactly like a missing id
   * (no route tells whether an org exists). A member whose role lacks the
   * action gets `forbidden`; a bearer credential also needs the action's scope
   * (`insufficient_scope`), and never gets more than its owner's CURRENT role.
   * Returns the caller's role.
   */
  async assertAllowed(auth: OrgCaller, orgId: string, action: OrgAction, meta: RequestMeta | null = null): Promise<OrgRole> {
    try {
      return await this.#authorize(auth, orgId, action, meta);
    } catch (error) {
      throw await this.#recordIfDenied(error);
    }
  }

  /** The decision itself; a refusal by role is an `AccessDenied`, recorded by the caller outside any transaction. */
  async #authorize(auth: OrgCaller, orgId: string, action: OrgAction, meta: RequestMeta | null, executor?: Transaction<MainDB>): Promise<OrgRole> {
    const role = await this.roleOf(orgId, auth.userId, executor);
    if (!role || (auth.kind === 'bearer' && auth.orgId && auth.orgId !== orgId)) throw new RampartError('not_found');
    if (!roleAllows(role, action)) throw new AccessDenied(auth, orgId, action, role, meta);
    if (auth.kind === 'bearer') {
      const scopes = [ACTION_SCOPES[action]].flat();
      if (!scopes.some((scope) => auth.scopes?.includes(scope))) throw new RampartError('insufficient_scope', { publicDetail: `This action needs the ${scopes.join(' or ')} scope.` });
    }
    return role;
  }

  /**
   * Runs `work` in a transaction holding the org's row lock, so membership
   * changes of one org run one at a time and the caller's role is read inside
   * it (never a stale role). A refusal is recorded after the rollback: an event
   * written inside would be rolled back with it.
   */
  async #inOrgTransaction<T>(orgId: string, work: (trx: Transaction<MainDB>) => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        if (!(await this.repo.lockOrg(orgId, this.clock.now(), trx))) throw new RampartError('not_found');
        return work(trx);
      });
    } catch (error) {
      throw await this.#recordIfDenied(error);
    }
  }

  async #recordIfDenied(error: unknown): Promise<unknown> {
    if (!(error instanceof AccessDenied)) return error;
    await this.events.record({
      action: 'access.denied', orgId: error.orgId, actor: actorOf(error.auth), target: { type: 'org', id: error.orgId }, origin: error.meta,
      outcome: 'denied', details: { action: error.action, role: error.role },
    });
    return error;
  }

  /**
   * The request-time gate of everything that touches an org: membership (else
   * `not_found`), the org binding of a bearer credential, and the org's IP
   * allowlist (else `ip_not_allowed` and an `ip.blocked` event). `orgId` is the
   * org named in the path, or null for a request that names none; a credential
   * bound to an org is held to that org's allowlist on every route.
   */
  async assertRequestAllowed(auth: OrgCaller, orgId: string | null, meta: RequestMeta, session: SessionMfa | null = null): Promise<void> {
    if (orgId !== null) {
      const membership = await this.repo.findMembershipWithOrg(orgId, auth.userId);
      if (!membership || (auth.kind === 'bearer' && auth.orgId && auth.orgId !== orgId)) {
        await this.events.record({
          action: 'access.denied', actor: actorOf(auth), target: { type: 'org', id: orgId }, origin: meta,
          outcome: 'denied', details: { reason: 'not_a_member' },
        });
        throw new RampartError('not_found');
      }
      // The org's stored policy, parsed once for both of its rules on this request.
      const policy = parseStoredPolicy(membership.policy);
      await this.#assertAddress(auth, membership.org_id, policy, meta, 'request');
      if (session) assertOrgFactor(policy, session);
    }
    if (auth.kind === 'bearer' && auth.orgId && auth.orgId !== orgId) {
      const membership = await this.repo.findMembershipWithOrg(auth.orgId, auth.userId);
      // A credential bound to an org its owner left is a credential for nothing.
      if (!membership) throw new RampartError('unauthenticated', { publicDetail: 'The token\'s organization membership has ended.' });
      await this.#assertAddress(auth, membership.org_id, parseStoredPolicy(membership.policy), meta, 'token');
    }
  }

  /**
   * The login rule for IP allowlists: a login succeeds when at least one of the
   * user's orgs admits the address (an org with an empty allowlist admits every
   * address); a user in no org is not affected. Every later request that
   * touches an org is held to that org's own list, so a member of A and B who
   * logs in from B's network still cannot reach A from there.
   */
  async assertLoginAllowed(userId: string, meta: RequestMeta): Promise<void> {
    const memberships = await this.repo.listMembershipsOfUser(userId);
    await this.assertLoginAllowedBy(userId, memberships.map((m) => ({ orgId: m.org_id, ipAllowlist: parseStoredPolicy(m.policy).network.ipAllowlist })), meta);
  }

  /** The same rule over the orgs' allowlists a login already read (`EffectivePolicy.orgNetworks`). */
  async assertLoginAllowedBy(userId: string, networks: ReadonlyArray<{ orgId: string; ipAllowlist: readonly string[] }>, meta: RequestMeta): Promise<void> {
    if (networks.length === 0) return;
    const blocking = networks.filter((network) => !isAddressAllowed(network.ipAllowlist, meta.ip));
    if (blocking.length < networks.length) return;
    for (const network of blocking) {
      await this.events.record({
        action: 'ip.blocked', orgId: network.orgId, actor: { type: 'user', id: userId }, target: { type: 'user', id: userId },
        origin: meta, outcome: 'denied', details: { via: 'login' },
      });
    }
    throw new RampartError('ip_not_allowed');
  }

  // ---- writes ----------------------------------------------------------------

  async createOrg(userId: string, input: { name: string; slug: string }, meta: RequestMeta): Promise<Org & { role: OrgRole }> {
    const now = this.clock.now();
    const row: OrgRow = {
      id: randomId('org'), name: input.name, slug: input.slug, policy: JSON.stringify(defaultOrgPolicy()),
      mfa_required_since: null, created_at: now, updated_at: now,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        // Counted in the transaction that inserts, with the count held (see countOwnedOrgsHeld):
        // two creations at the limit cannot both pass. Ownership is the measure because an org
        // lives as long as it has an owner; a refusal writes nothing.
        const owned = await this.repo.countOwnedOrgsHeld(userId, trx);
        if (owned >= this.options.maxOrgsPerUser) {
          throw new RampartError('org_limit_reached', {
            publicDetail: `You own ${owned} organizations; at most ${this.options.maxOrgsPerUser} are allowed. Leave or hand over one first.`,
          });
        }
        await this.repo.insertOrg(row, trx);
        await this.repo.insertMembership({ org_id: row.id, user_id: userId, role: 'owner', joined_at: now }, trx);
        const base = { orgId: row.id, actor: { type: 'user' as const, id: userId }, origin: meta, outcome: 'success' as const };
        await this.events.record({ ...base, action: 'org.created', target: { type: 'org', id: row.id }, details: { slug: row.slug } }, trx);
        await this.events.record({ ...base, action: 'member.added', target: { type: 'user', id: userId }, details: { role: 'owner', via: 'org_created' } }, trx);
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new RampartError('slug_taken');
      throw error;
    }
    return { ...toOrg(row), role: 'owner' };
  }

  /**
   * Replaces the org policy (PUT). Refuses an allowlist that would shut out the
   * caller's own address unless `force` says so. The change and its
   * `policy.updated` event (before and after) commit together.
   */
  /**
   * Replaces the org's policy with `input` merged onto the current one (members left out keep
   * their values; `mergePolicy`), validated whole. `would_lock_out_self` when the resulting
   * allowlist excludes the caller's address, unless forced.
   */
  async updatePolicy(auth: OrgCaller, orgId: string, input: unknown, options: { force: boolean; meta: RequestMeta }): Promise<OrgPolicy> {
    await this.assertAllowed(auth, orgId, 'policy.update', options.meta);
    const now = this.clock.now();
    return this.db.transaction().execute(async (trx) => {
      if (!(await this.repo.lockOrg(orgId, now, trx))) throw new RampartError('not_found');
      const row = (await this.repo.findOrg(orgId, trx))!;
      const before = parseStoredPolicy(row.policy);
      const after = assertValidPolicy(mergePolicy(before, input));
      const excludesCaller = !isAddressAllowed(after.network.ipAllowlist, options.meta.ip);
      if (excludesCaller && !options.force) {
        throw new RampartError('would_lock_out_self', {
          publicDetail: 'The new IP allowlist does not include your own address; send ?force=true to save it anyway.',
        });
      }
      const mfaRequiredSince = !after.mfa.required ? null : before.mfa.required && row.mfa_required_since !== null ? row.mfa_required_since : now;
      await this.repo.updatePolicy(orgId, JSON.stringify(after), mfaRequiredSince, now, trx);
      await this.events.record({
        action: 'policy.updated', orgId, actor: actorOf(auth), target: { type: 'org', id: orgId }, origin: options.meta,
        outcome: 'success',
        details: { before, after, ...(options.force && excludesCaller ? { forced: true } : {}) },
      }, trx);
      return after;
    });
  }

  /** Invites an address (admin+; the owner role only by an owner). Returns the invitation's id and expiry. */
  async invite(auth: OrgCaller, orgId: string, input: { email: string; role: OrgRole }, meta: RequestMeta): Promise<{ id: string; expiresAt: string }> {
    const callerRole = await this.assertAllowed(auth, orgId, 'members.invite', meta);
    if (input.role === 'owner' && !roleAllows(callerRole, 'members.manage_owners')) {
      throw await this.#recordIfDenied(new AccessDenied(auth, orgId, 'members.manage_owners', callerRole, meta, 'Only an owner can invite an owner.'));
    }
    const existing = await this.pii.findUserIdByEmail(input.email);
    if (existing && (await this.repo.findMembership(orgId, existing))) throw new RampartError('already_member');
    const org = await this.repo.findOrg(orgId);
    if (!org) throw new RampartError('not_found');
    // Stored under the current blind-index key version; an older invitation may hold another.
    const [emailIndex, ...olderIndexes] = await this.pii.emailIndexes(input.email);
    const token = randomToken(32);
    const now = this.clock.now();
    const id = randomId('inv');
    const expiresAt = now + INVITATION_TTL_MS;
    // The mail goes out BEFORE anything is stored, so the stores never hold an invitation
    // whose link was not sent (`invitation.created` says "mailed", and the chained log
    // cannot take an event back). A relay that fails writes nothing: no row, no event, and
    // a retry starts afresh. A crash between the send and the commit leaves no row and no
    // event either; the mailed link then names no invitation and fails closed
    // (`invalid_token`). The other orders are worse: storing first leaves, after a crash,
    // a usable row and an event for a mail that never left; sending inside the
    // transaction holds the org lock (on SQLite the database's write lock) for as long as
    // the relay takes.
    // Each pending invitation is a mail to an address the inviter chose: a business limit per
    // org, checked before the mail goes out, and again under the org lock below.
    await this.#assertInvitationRoom(orgId, now, [emailIndex!, ...olderIndexes]);
    const link = `${this.options.publicUrl()}/invitations/accept?token=${token}`;
    await this.#sendInvitation(orgId, auth, input.role, meta, {
      to: input.email,
      subject: `You are invited to join ${org.name} on ${this.options.productName}`,
      text: [
        `You have been invited to join the organization "${org.name}" on ${this.options.productName} as ${input.role}.`,
        '',
        'Sign in (or sign up) with this email address, then open this link within 7 days:',
        '',
        link,
        '',
        'The link works once. If you did not expect this invitation, ignore this message.',
        '',
      ].join('\r\n'),
    });
    await this.#inOrgTransaction(orgId, async (trx) => {
      // The role again, under the org lock: the send took time, and a link mailed by someone
      // demoted meanwhile must not come to work (refused here, it fails closed like the above).
      const role = await this.#authorize(auth, orgId, 'members.invite', meta, trx);
      if (input.role === 'owner' && !roleAllows(role, 'members.manage_owners')) {
        throw new AccessDenied(auth, orgId, 'members.manage_owners', role, meta, 'Only an owner can invite an owner.');
      }
      // Only the newest link for an address works.
      await this.repo.deletePendingInvitations(orgId, [emailIndex!, ...olderIndexes], trx);
      await this.#assertInvitationRoom(orgId, now, [], trx);
      await this.repo.insertInvitation({
        id, org_id: orgId, email_index: emailIndex!, role: input.role, token_hash: sha256Hex(token), invited_by: auth.userId,
        created_at: now, expires_at: expiresAt, accepted_at: null, accepted_by: null,
      }, trx);
      await this.events.record({
        action: 'invitation.created', orgId, actor: actorOf(auth), target: { type: 'invitation', id }, origin: meta,
        outcome: 'success', details: { role: input.role, expiresAt: iso(expiresAt) },
      }, trx);
    });
    return { id, expiresAt: iso(expiresAt) };
  }

  /**
   * The invitation's link exists only in this mail: when the relay refuses or does not
   * answer, the caller learns it (503, retry) instead
   * of an internal error (ASVS V16.5.2). Nothing was stored yet (see `invite`), and the
   * unsent token never left the server.
   */
  async #sendInvitation(orgId: string, auth: OrgCaller, role: OrgRole, meta: RequestMeta, message: Parameters<Mailer['send']>[0]): Promise<void> {
    try {
      await this.mailer.send(message);
    } catch (error) {
      const reason = (error as { code?: unknown }).code;
      // The attempt is audited as failed (an admin inviting in a loop during an outage is
      // visible); never with the address, and no invitation was stored (see `invite`).
      await this.events.record({
        action: 'invitation.failed', orgId, actor: actorOf(auth), target: null, origin: meta,
        outcome: 'failure', details: { role, reason: 'mail_unavailable' },
      });
      throw new RampartError('mail_unavailable', {
        headers: { 'retry-after': '60' },
        // The code and the message: ESOCKET alone does not tell an untrusted certificate from a refused connection.
        detail: `invitation mail not sent: ${typeof reason === 'string' ? `${reason}: ` : ''}${(error as Error).message}`,
        cause: error,
      });
    }
  }

  /** Refuses a new invitation when the org has its fill pending; `replaced`: the invited address's indexes (a new link replaces its older one). */
  async #assertInvitationRoom(orgId: string, now: number, replaced: readonly string[], executor?: Transaction<MainDB>): Promise<void> {
    const pending = await this.repo.countPendingInvitations(orgId, now, replaced, executor);
    if (pending >= this.options.maxPendingInvitationsPerOrg) {
      throw new RampartError('invitation_limit_reached', {
        publicDetail: `This organization has ${pending} pending invitations; at most ${this.options.maxPendingInvitationsPerOrg} are allowed. Wait for some to be accepted or to expire.`,
      });
    }
  }

  /** Deletes invitations that expired unused (the hourly sweep). */
  async sweepExpiredInvitations(): Promise<number> {
    return this.repo.deleteExpiredInvitations(this.clock.now());
  }

  /**
   * Pending invitations whose address is indexed under a blind-index key version older than
   * `currentVersion` (an invitation holds only the index, so it cannot be re-keyed): the
   * older version must stay until they are accepted or expire.
   */
  async pendingInvitationsUnderOlderIndexKeys(currentVersion: number): Promise<{ count: number; lastExpiresAt: string | null }> {
    const { count, lastExpiresAt } = await this.repo.pendingInvitationsNotUnder(withKeyVersion(currentVersion, ''), this.clock.now());
    return { count, lastExpiresAt: lastExpiresAt === null ? null : iso(lastExpiresAt) };
  }

  /**
   * Accepts an invitation for the signed-in user, whose address must be the
   * invited one. Single use: the token is consumed in the same transaction that
   * adds the membership; a used, expired, unknown or malformed token is `invalid_token`.
   */
  async acceptInvitation(userId: string, token: string, meta: RequestMeta): Promise<Org & { role: OrgRole }> {
    if (!INVITATION_TOKEN.test(token)) throw new RampartError('invalid_token');
    const invitation = await this.repo.findInvitationByTokenHash(sha256Hex(token));
    const now = this.clock.now();
    if (!invitation || invitation.accepted_at !== null || invitation.expires_at <= now) throw new RampartError('invalid_token');
    const profile = await this.pii.getProfile(userId);
    if (!profile || !(await this.pii.emailMatchesIndex(profile.email, invitation.email_index))) {
      throw new RampartError('invitation_email_mismatch');
    }
    const org = await this.repo.findOrg(invitation.org_id);
    if (!org) throw new RampartError('invalid_token');
    // Joining touches the org: its allowlist applies from the first request.
    if (!isAddressAllowed(parseStoredPolicy(org.policy).network.ipAllowlist, meta.ip)) {
      await this.events.record({
        action: 'ip.blocked', orgId: org.id, actor: { type: 'user', id: userId }, target: { type: 'invitation', id: invitation.id },
        origin: meta, outcome: 'denied', details: { via: 'invitation' },
      });
      throw new RampartError('ip_not_allowed');
    }
    const role = await this.db.transaction().execute(async (trx) => {
      // The invitation's mailed secret proves the address: the user's row first, its event with the
      // others (ARCHITECTURE.md "Lock order"); undone with the rest if the token was taken meanwhile.
      const recordProof = await this.#addressProof?.(userId, meta, trx);
      if (!(await this.repo.lockOrg(org.id, now, trx))) throw new RampartError('invalid_token');
      if (!(await this.repo.consumeInvitation(invitation.id, userId, now, trx))) throw new RampartError('invalid_token');
      // The membership before the events: its foreign key takes the user's row (FOR KEY SHARE),
      // and row locks come before the audit chain's head (ARCHITECTURE.md "Lock order").
      const existing = await this.repo.findMembership(org.id, userId, trx);
      if (!existing) await this.repo.insertMembership({ org_id: org.id, user_id: userId, role: invitation.role, joined_at: now }, trx);
      const base = { orgId: org.id, actor: { type: 'user' as const, id: userId }, origin: meta, outcome: 'success' as const };
      await this.events.record({ ...base, action: 'invitation.accepted', target: { type: 'invitation', id: invitation.id }, details: { role: invitation.role } }, trx);
      await recordProof?.();
      if (existing) return toRole(existing.role);
      await this.events.record({ ...base, action: 'member.added', target: { type: 'user', id: userId }, details: { role: invitation.role, via: 'invitation' } }, trx);
      return toRole(invitation.role);
    });
    return { ...toOrg(org), role };
  }

  /**
   * Changes a member's role (admin+). Only an owner grants the owner role or
   * changes an owner's; the last owner cannot be demoted (`last_owner`).
   */
  async changeRole(auth: OrgCaller, orgId: string, targetUserId: string, role: OrgRole, meta: RequestMeta): Promise<OrgMember> {
    await this.#inOrgTransaction(orgId, async (trx) => {
      const callerRole = await this.#authorize(auth, orgId, 'members.update_role', meta, trx);
      const target = await this.repo.findMembership(orgId, targetUserId, trx);
      if (!target) throw new RampartError('not_found');
      if ((target.role === 'owner' || role === 'owner') && !roleAllows(callerRole, 'members.manage_owners')) {
        throw new AccessDenied(auth, orgId, 'members.manage_owners', callerRole, meta, 'Only an owner can grant, change or remove the owner role.');
      }
      if (target.role === role) return;
      if (target.role === 'owner' && (await this.repo.countOwners(orgId, trx)) <= 1) throw new RampartError('last_owner');
      await this.repo.updateRole(orgId, targetUserId, role, trx);
      await this.events.record({
        action: 'member.role_changed', orgId, actor: actorOf(auth), target: { type: 'user', id: targetUserId }, origin: meta,
        outcome: 'success', details: { from: target.role, to: role },
      }, trx);
    });
    const row = await this.repo.findMember(orgId, targetUserId);
    const [member] = row ? await this.#withProfiles([row]) : [];
    if (!member) throw new RampartError('not_found');
    return member;
  }

  /**
   * Ends a membership: an admin removing someone (an owner only by an owner), or
   * anyone leaving. The last owner can neither leave nor be removed. Membership
   * is read at every request, so the member's sessions and tokens lose the org now.
   */
  async removeMember(auth: OrgCaller, orgId: string, targetUserId: string, meta: RequestMeta): Promise<void> {
    const self = targetUserId === auth.userId;
    await this.#inOrgTransaction(orgId, async (trx) => {
      const callerRole = await this.#authorize(auth, orgId, self ? 'members.leave' : 'members.remove', meta, trx);
      const target = await this.repo.findMembership(orgId, targetUserId, trx);
      if (!target) throw new RampartError('not_found');
      if (target.role === 'owner') {
        if (!self && !roleAllows(callerRole, 'members.manage_owners')) {
          throw new AccessDenied(auth, orgId, 'members.manage_owners', callerRole, meta, 'Only an owner can remove an owner.');
        }
        if ((await this.repo.countOwners(orgId, trx)) <= 1) throw new RampartError('last_owner');
      }
      await this.repo.deleteMembership(orgId, targetUserId, trx);
      await this.events.record({
        action: 'member.removed', orgId, actor: actorOf(auth), target: { type: 'user', id: targetUserId }, origin: meta,
        outcome: 'success', details: { role: target.role, self },
      }, trx);
      for (const listener of this.#membershipEnded) await listener(orgId, targetUserId, trx, meta);
    });
  }

  /** Adds a member directly (CLI, tests, imports); the HTTP way in is an invitation. */
  async addMember(orgId: string, userId: string, role: OrgRole, actor: SecurityEventInput['actor'], transaction?: Transaction<MainDB>): Promise<void> {
    const run = async (trx: Transaction<MainDB>) => {
      await this.repo.insertMembership({ org_id: orgId, user_id: userId, role, joined_at: this.clock.now() }, trx);
      await this.events.record({
        action: 'member.added', orgId, actor, target: { type: 'user', id: userId }, outcome: 'success', details: { role, via: 'direct' },
      }, trx);
    };
    if (transaction) await run(transaction);
    else await this.db.transaction().execute(run);
  }

  async #assertAddress(auth: OrgCaller, orgId: string, policy: OrgPolicy, meta: RequestMeta, via: string): Promise<void> {
    if (isAddressAllowed(policy.network.ipAllowlist, meta.ip)) return;
    await this.events.record({
      action: 'ip.blocked', orgId, actor: actorOf(auth), target: { type: 'org', id: orgId },
      origin: meta, outcome: 'denied', details: { via, credential: auth.kind },
    });
    throw new RampartError('ip_not_allowed');
  }
}

/** A refusal by role: `forbidden` to the client, an `access.denied` event once outside the transaction. */
class AccessDenied extends RampartError {
  constructor(
    readonly auth: OrgCaller,
    readonly orgId: string,
    readonly action: OrgAction,
    readonly role: OrgRole,
    readonly meta: RequestMeta | null,
    publicDetail = `Your role (${role}) does not allow ${action}.`,
  ) {
    super('forbidden', { publicDetail });
  }
}

function actorOf(auth: OrgCaller): SecurityEventInput['actor'] {
  return { type: 'user', id: auth.userId };
}

function toRole(value: string): OrgRole {
  if (!isOrgRole(value)) throw new Error(`unknown org role in the store: ${value}`);
  return value;
}

function toOrg(row: OrgRow): Org {
  return { id: row.id, name: row.name, slug: row.slug, createdAt: iso(row.created_at) };
}

/**
 * The org's own second-factor rule on a session touching it. A session that satisfies the
 * user's effective policy satisfies every org's whenever the orgs accept a method in common
 * (that policy asks for one of those); when they do not, it asks for a method any of them
 * accepts, and each org's own list is held here.
 */
function assertOrgFactor(policy: OrgPolicy, session: SessionMfa): void {
  if (sessionSatisfiesPolicy(session, policy)) return;
  throw new RampartError('mfa_enrollment_required', {
    publicDetail: `This organization accepts only ${policy.mfa.methods.join(' or ')} as a second factor: sign in with ${policy.mfa.methods.length === 1 ? 'it' : 'one of them'} (enroll it first if needed) to reach it.`,
  });
}
