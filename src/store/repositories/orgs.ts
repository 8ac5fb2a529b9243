import type { Kysely, Transaction } from 'kysely';
import type { ChangeFeed } from '../change-feed.js';
import { preparedQuery } from '../prepared.js';
import { holdUserRow } from './users.js';
import { altersRows, ReadCache } from '../read-cache.js';
import type { MainDB, OrgInvitationTable, OrgMembershipTable, OrgTable } from '../schema.js';

export type OrgRow = OrgTable;
export type MembershipRow = OrgMembershipTable;
export type InvitationRow = OrgInvitationTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** A membership with the org it belongs to: what the policy resolver and the session view need. */
export interface MembershipWithOrg {
  org_id: string;
  role: string;
  joined_at: number;
  name: string;
  slug: string;
  policy: string;
  mfa_required_since: number | null;
}

/** Orgs, memberships and invitations: the only SQL of the orgs feature. */
export class OrgRepository {
  /** Runs on every GET /v1/session and every policy resolution: built and compiled once. */
  readonly #membershipsOfUser: (userId: string) => Promise<MembershipWithOrg[]>;
  /**
   * And kept between requests (see `ReadCache`): emptied by any change to a
   * membership, to an org (its name, its policy), or by an account's deletion
   * (whose memberships cascade away). A new org has no members until its first
   * membership row.
   */
  readonly #kept: ReadCache<string, readonly MembershipWithOrg[]> | null;

  constructor(private readonly db: Kysely<MainDB>, private readonly postgres = false, changes: ChangeFeed | null = null, now: () => number = Date.now) {
    this.#membershipsOfUser = preparedQuery<MembershipWithOrg, [string]>(db, 1, (userId) => this.#membershipsQuery(db, userId));
    this.#kept = changes && new ReadCache({
      feed: changes,
      dependsOn: (change) => change.table === 'org_memberships' || altersRows(change, 'orgs') || (change.table === 'users' && change.kind === 'delete'),
      now,
    });
  }

  async insertOrg(row: OrgRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('orgs').values(row).execute();
  }

  async findOrg(id: string, executor: Executor = this.db): Promise<OrgRow | undefined> {
    return executor.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Takes the org's row lock for the rest of the transaction (PostgreSQL row lock,
   * SQLite database write lock), so that concurrent membership changes of one org
   * run one after the other and "at least one owner" cannot be raced away.
   */
  async lockOrg(id: string, now: number, executor: Transaction<MainDB>): Promise<boolean> {
    const result = await executor.updateTable('orgs').set({ updated_at: now }).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Locks the rows of every org the user belongs to, in id order, until the transaction
   * ends (PostgreSQL FOR NO KEY UPDATE, the lock `lockOrg`'s UPDATE takes; SQLite runs
   * one write transaction at a time). For an account's deletion: its DELETE cascades to
   * the memberships after `user.deleted` is appended, so a membership change of one of
   * those orgs (which locks the org, then the membership row, then appends) could hold a
   * membership row while waiting for the audit chain's head that the deletion holds.
   * Taken after the user's row and before the append (ARCHITECTURE.md "Lock order"); id
   * order keeps two deletions sharing orgs from locking them in opposite orders. It also
   * makes the last-owner check read each org's owners while their changes wait.
   */
  async holdOrgsOfMember(userId: string, trx: Transaction<MainDB>): Promise<void> {
    if (!this.postgres) return;
    await trx.selectFrom('orgs').select('id')
      .where('id', 'in', (eb) => eb.selectFrom('org_memberships').select('org_id').where('user_id', '=', userId))
      .orderBy('id').forNoKeyUpdate().execute();
  }

  async updatePolicy(id: string, policy: string, mfaRequiredSince: number | null, now: number, executor: Executor = this.db): Promise<void> {
    await executor.updateTable('orgs').set({ policy, mfa_required_since: mfaRequiredSince, updated_at: now }).where('id', '=', id).execute();
  }

  async insertMembership(row: MembershipRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('org_memberships').values(row).execute();
  }

  async findMembership(orgId: string, userId: string, executor: Executor = this.db): Promise<MembershipRow | undefined> {
    return executor.selectFrom('org_memberships').selectAll().where('org_id', '=', orgId).where('user_id', '=', userId).executeTakeFirst();
  }

  /**
   * Whether the membership exists, holding it until the transaction ends: on
   * PostgreSQL a share lock, so a concurrent removal (which revokes the member's
   * org-bound tokens in its own transaction) waits for this one or is seen by it;
   * SQLite runs one write transaction at a time, so the read alone suffices.
   */
  async holdMembership(orgId: string, userId: string, trx: Transaction<MainDB>): Promise<boolean> {
    const query = trx.selectFrom('org_memberships').select('user_id').where('org_id', '=', orgId).where('user_id', '=', userId);
    return (await (this.postgres ? query.forShare() : query).executeTakeFirst()) !== undefined;
  }

  /** The membership joined with its org, in one indexed read (every org request makes it). */
  async findMembershipWithOrg(orgId: string, userId: string): Promise<MembershipWithOrg | undefined> {
    return this.#membershipsWithOrgs(this.db)
      .where('org_memberships.org_id', '=', orgId)
      .where('org_memberships.user_id', '=', userId)
      .executeTakeFirst();
  }

  /**
   * The user's memberships with their orgs, oldest first. Read on the store itself
   * they may come from memory and are shared: callers must not change them (they
   * are frozen). Inside a transaction they are always read.
   */
  async listMembershipsOfUser(userId: string, executor: Executor = this.db): Promise<readonly MembershipWithOrg[]> {
    if (executor !== this.db) return this.#membershipsQuery(executor, userId).execute();
    return this.#kept ? this.#kept.get(userId, this.#readMembershipsOf) : this.#readMembershipsOf(userId);
  }

  readonly #readMembershipsOf = async (userId: string): Promise<readonly MembershipWithOrg[]> =>
    Object.freeze((await this.#membershipsOfUser(userId)).map((row) => Object.freeze(row)));

  #membershipsQuery(executor: Executor, userId: string) {
    return this.#membershipsWithOrgs(executor)
      .where('org_memberships.user_id', '=', userId)
      .orderBy('org_memberships.joined_at', 'asc')
      .orderBy('org_memberships.org_id', 'asc');
  }

  async listMembers(orgId: string, executor: Executor = this.db): Promise<Array<MembershipRow & { mfa_enabled: number }>> {
    return this.#members(executor, orgId)
      .orderBy('org_memberships.joined_at', 'asc')
      .orderBy('org_memberships.user_id', 'asc')
      .execute();
  }

  /**
   * One page of an org's members in the order of `listMembers` (joined_at, then
   * user_id), starting after the given position (keyset paging: a member who
   * joins or leaves meanwhile never shifts a page).
   */
  async listMembersPage(
    orgId: string,
    after: { joinedAt: number; userId: string } | null,
    limit: number,
  ): Promise<Array<MembershipRow & { mfa_enabled: number }>> {
    let query = this.#members(this.db, orgId);
    if (after) {
      query = query.where((eb) => eb.or([
        eb('org_memberships.joined_at', '>', after.joinedAt),
        eb.and([eb('org_memberships.joined_at', '=', after.joinedAt), eb('org_memberships.user_id', '>', after.userId)]),
      ]));
    }
    return query.orderBy('org_memberships.joined_at', 'asc').orderBy('org_memberships.user_id', 'asc').limit(limit).execute();
  }

  async findMember(orgId: string, userId: string, executor: Executor = this.db): Promise<(MembershipRow & { mfa_enabled: number }) | undefined> {
    return this.#members(executor, orgId).where('org_memberships.user_id', '=', userId).executeTakeFirst();
  }

  async countOwners(orgId: string, executor: Executor = this.db): Promise<number> {
    const row = await executor
      .selectFrom('org_memberships')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('org_id', '=', orgId)
      .where('role', '=', 'owner')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * How many orgs the user owns, counted for the creation cap inside the creating
   * transaction. On PostgreSQL the user's row is locked first, until that transaction
   * ends: under READ COMMITTED two creations by one user would otherwise both count the
   * same number and both insert. FOR NO KEY UPDATE, like the other caps: FOR UPDATE would
   * also block every insert referencing the user (a session, a membership: their foreign
   * key takes FOR KEY SHARE) for no benefit. Taken first in the transaction, before the
   * audit append (lock order: ARCHITECTURE.md "Lock order"). SQLite needs no lock: its
   * transactions are serializable (this process runs them one at a time on its one
   * connection, and another process's commit in between makes this one's insert fail
   * with SQLITE_BUSY, never both succeed).
   */
  async countOwnedOrgsHeld(userId: string, trx: Transaction<MainDB>): Promise<number> {
    await holdUserRow(trx, userId, this.postgres);
    const row = await trx
      .selectFrom('org_memberships')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', userId)
      .where('role', '=', 'owner')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async updateRole(orgId: string, userId: string, role: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.updateTable('org_memberships').set({ role }).where('org_id', '=', orgId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteMembership(orgId: string, userId: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('org_memberships').where('org_id', '=', orgId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async insertInvitation(row: InvitationRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('org_invitations').values(row).execute();
  }

  /** Removes the pending invitations of one address to one org (a new one replaces them); `emailIndexes`: its index under each key version. */
  async deletePendingInvitations(orgId: string, emailIndexes: readonly string[], executor: Executor = this.db): Promise<number> {
    const result = await executor
      .deleteFrom('org_invitations')
      .where('org_id', '=', orgId)
      .where('email_index', 'in', emailIndexes)
      .where('accepted_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Pending invitations of an org (not accepted, not expired at `now`), but those of the addresses indexed `except`. */
  async countPendingInvitations(orgId: string, now: number, except: readonly string[], executor: Executor = this.db): Promise<number> {
    let query = executor.selectFrom('org_invitations')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('org_id', '=', orgId).where('accepted_at', 'is', null).where('expires_at', '>', now);
    if (except.length > 0) query = query.where('email_index', 'not in', except);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Deletes invitations that expired unused (their link is refused anyway). Accepted ones stay, with who accepted them. */
  async deleteExpiredInvitations(now: number): Promise<number> {
    const result = await this.db.deleteFrom('org_invitations').where('accepted_at', 'is', null).where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * Pending invitations (not accepted, not expired at `now`) whose email index does not start
   * with `prefix`: written under an older blind-index key version. How many, and when the
   * last of them expires.
   */
  async pendingInvitationsNotUnder(prefix: string, now: number): Promise<{ count: number; lastExpiresAt: number | null }> {
    const row = await this.db.selectFrom('org_invitations')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.max('expires_at').as('last')])
      .where('accepted_at', 'is', null).where('expires_at', '>', now)
      .where('email_index', 'not like', `${prefix}%`)
      .executeTakeFirstOrThrow();
    return { count: Number(row.n), lastExpiresAt: row.last === null ? null : Number(row.last) };
  }

  async findInvitationByTokenHash(tokenHash: string, executor: Executor = this.db): Promise<InvitationRow | undefined> {
    return executor.selectFrom('org_invitations').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /** Marks an invitation used; false when someone used it first (single use under concurrency). */
  async consumeInvitation(id: string, userId: string, now: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('org_invitations')
      .set({ accepted_at: now, accepted_by: userId })
      .where('id', '=', id)
      .where('accepted_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** An org's memberships, each with its member's `mfa_enabled` (the rows of the member list). */
  #members(executor: Executor, orgId: string) {
    return executor
      .selectFrom('org_memberships')
      .innerJoin('users', 'users.id', 'org_memberships.user_id')
      .selectAll('org_memberships')
      .select('users.mfa_enabled')
      .where('org_memberships.org_id', '=', orgId);
  }

    #membershipsWithOrgs(executor: Executor) {
    return executor
      .selectFrom('org_memberships')
      .innerJoin('orgs', 'orgs.id', 'org_memberships.org_id')
      .select([
        'org_memberships.org_id', 'org_memberships.role', 'org_memberships.joined_at',
        'orgs.name', 'orgs.slug', 'orgs.policy', 'orgs.mfa_required_since',
      ]);
  }
}
