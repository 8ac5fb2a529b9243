/**
 * Lock order on PostgreSQL. Every write that records an event appends to the hash-chained
 * audit log in its own transaction, and the append locks the chain's head row
 * (`UPDATE audit_head`, see AuditRepository.reserve) until commit. A transaction that
 * takes the head first and then waits for a user's or an org's row, while another holds
 * that row and waits for the head, is a deadlock: PostgreSQL aborts one of them (40P01)
 * and its request fails with a 500. The rule: owner rows (the user, then the org) before
 * the audit chain, and the user's row before the user's other rows. These pairs broke it:
 *
 * - deleting an account appended `user.deleted`, then deleted the user row (FOR UPDATE);
 *   an API-token creation (user row FOR NO KEY UPDATE, then the append) or a lock (user
 *   row UPDATE, then the append) of the same account ran in the other order; so did
 *   leaving an org (org row, membership row, then the append) against the DELETE's
 *   cascade to that membership. A deletion now locks the user's row, then its orgs' rows,
 *   first; the org lock also serializes the last-owner checks of two owners leaving at once;
 * - a password reset consumed its link (a row of the user's, which the deletion's cascade
 *   deletes), then wrote the user's row; it now takes the user's row first;
 * - a staff role revocation deleted the grant (another of the user's rows) and appended its
 *   event before any lock on the user's row, against a deletion holding that row and the
 *   head (11 of 80 calls deadlocked); grants, revocations, assuming and releasing a role now
 *   take the user's row first;
 * - (no fix needed, held by a test) a login inserts its session, whose foreign key
 *   share-locks the user's row, before its append; a deletion holds that row first;
 * - accepting an invitation locked the org, appended `invitation.accepted`, then inserted
 *   the membership, whose foreign key takes FOR KEY SHARE on the user row; an org
 *   creation by the same user held that row FOR UPDATE and waited for the head;
 * - marking an unverified address verified (an accepted invitation, a completed reset)
 *   appended `email.verified` before the acceptance locked the org (against a role change
 *   in that org: 14–20 of 120 calls deadlocked) and before the reset ended the user's
 *   sessions (against the user ending them: 14 of 180); the event now goes with the others.
 *
 * Each pair runs concurrently many times, through the services; no call may fail with a
 * deadlock or a serialization failure. SQLite runs one write transaction at a time and
 * must behave as before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { randomId, randomToken } from '../../src/crypto/random.js';
import { sha256Hex } from '../../src/crypto/hash.js';
import { strongPassword, uniqueEmail } from '../helpers/harness.js';
import { uniqueSlug } from '../helpers/orgs.js';
import { startTestServices, type TestServices } from '../helpers/services.js';

/** Rounds, each with PAIRS pairs at once (10 pool connections: two each). */
const ROUNDS = 10;
const PAIRS = 4;
const meta = { ip: '127.0.0.1', userAgent: 'lock-order' };
/** About the time a reset takes to hash its password (argon2id) before its transaction. */
const RESET_HEAD_START_MS = 30;
const LOCK_ERRORS = new Set(['40P01', '40001']);

function lockFailures(outcomes: Array<PromiseSettledResult<unknown>>): string[] {
  return outcomes.flatMap((outcome) => {
    if (outcome.status === 'fulfilled') return [];
    const code = (outcome.reason as { code?: unknown }).code;
    return typeof code === 'string' && LOCK_ERRORS.has(code) ? [`${code}: ${(outcome.reason as Error).message}`] : [];
  });
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`transactions take owner rows before the audit chain (${store})`, () => {
    let s: TestServices;
    before(async () => {
      s = await startTestServices({ store, env: { MAX_ORGS_PER_USER: '10000' } });
    });
    after(async () => {
      await s.close();
    });

    /** An account written straight to the stores (no password hashing: only its rows matter here). */
    async function newUser(label: string, mfaEnabled: 0 | 1 = 0): Promise<{ userId: string; email: string }> {
      const userId = randomId('usr');
      const email = uniqueEmail(label);
      await s.services.pii.createProfile(userId, email, null);
      const now = s.clock.now();
      await s.services.users.insert({
        id: userId, status: 'active', password_hash: '$argon2id$unused', password_changed_at: now,
        email_verified: 0, mfa_enabled: mfaEnabled, created_at: now, updated_at: now,
      });
      return { userId, email };
    }

    /**
     * Runs ROUNDS rounds of PAIRS pairs at once: `prepare` writes what a pair needs and
     * returns the function that starts its two calls (all pairs of a round start together).
     * Returns the outcomes; fails on any deadlock or serialization failure.
     */
    async function race(label: string, prepare: () => Promise<() => Array<Promise<unknown>>>): Promise<Array<PromiseSettledResult<unknown>>> {
      const all: Array<PromiseSettledResult<unknown>> = [];
      for (let round = 0; round < ROUNDS; round++) {
        const starts = await Promise.all(Array.from({ length: PAIRS }, prepare));
        all.push(...await Promise.allSettled(starts.flatMap((start) => start())));
      }
      const failures = lockFailures(all);
      assert.deepEqual(failures, [], `${label}: ${failures.length} of ${all.length} calls failed on a lock`);
      return all;
    }

    /** A pending member invitation of `email` written straight to the store; returns its token. */
    async function inviteDirectly(orgId: string, invitedBy: string, email: string): Promise<string> {
      const token = randomToken(32);
      const now = s.clock.now();
      await s.services.stores.main.db.insertInto('org_invitations').values({
        id: randomId('inv'), org_id: orgId, email_index: await s.services.pii.emailIndex(email), role: 'member',
        token_hash: sha256Hex(token), invited_by: invitedBy, created_at: now, expires_at: now + 3_600_000,
        accepted_at: null, accepted_by: null,
      }).execute();
      return token;
    }

    /** Every outcome at `index` of its pair fulfilled. */
    function assertFulfilled(outcomes: Array<PromiseSettledResult<unknown>>, index: number): void {
      for (let i = index; i < outcomes.length; i += 2) {
        const outcome = outcomes[i]!;
        assert.equal(outcome.status, 'fulfilled', outcome.status === 'rejected' ? String(outcome.reason) : '');
      }
    }

    test('account deletion and API-token creation of one account', async () => {
      const actor = { type: 'system' as const, id: null };
      const outcomes = await race('delete vs token', async () => {
        const { userId } = await newUser('del-token');
        return () => [
          s.services.accounts.delete(userId, actor, null),
          s.services.apiTokens.create({ userId, name: 'racer', scopes: ['profile:read'] }, meta),
        ];
      });
      assertFulfilled(outcomes, 0);
    });

    test('account deletion and an operator lock of one account', async () => {
      const actor = { type: 'system' as const, id: null };
      const outcomes = await race('delete vs lock', async () => {
        const { userId } = await newUser('del-lock');
        return () => [
          s.services.accounts.delete(userId, actor, null),
          s.services.accounts.lock(userId, actor, null, 'race'),
        ];
      });
      assertFulfilled(outcomes, 0);
    });

    test('account deletion and leaving an org, by one user', async () => {
      const owner = await newUser('leave-owner');
      const actor = { type: 'system' as const, id: null };
      const outcomes = await race('delete vs leave', async () => {
        const org = await s.services.orgs.createOrg(owner.userId, { name: 'Lock order', slug: uniqueSlug('lock-leave') }, meta);
        const member = await newUser('leave-member');
        await s.services.orgs.addMember(org.id, member.userId, 'member', actor);
        const auth = { kind: 'session' as const, userId: member.userId, scopes: null };
        return () => [
          s.services.accounts.delete(member.userId, actor, null),
          s.services.orgs.removeMember(auth, org.id, member.userId, meta),
        ];
      });
      assertFulfilled(outcomes, 0);
    });

    test('the two owners of an org deleting their accounts at once: one goes, the other is its last owner', async () => {
      const actor = { type: 'system' as const, id: null };
      // The deletion locks the orgs of the account before its last-owner check (holdOrgsOfMember):
      // without that lock both checks counted two owners and the org was left with none.
      for (let round = 0; round < ROUNDS; round++) {
        const first = await newUser('owner-a');
        const second = await newUser('owner-b');
        const org = await s.services.orgs.createOrg(first.userId, { name: 'Two owners', slug: uniqueSlug('lock-owners') }, meta);
        await s.services.orgs.addMember(org.id, second.userId, 'owner', actor);
        const outcomes = await Promise.allSettled([first, second].map((user) => s.services.accounts.delete(user.userId, actor, null)));
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, outcomes.map((o) => o.status === 'rejected' ? String(o.reason) : 'ok').join('\n'));
        const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
        assert.equal((refused.reason as { code?: string }).code, 'last_owner', String(refused.reason));
        const owners = await s.services.stores.main.db.selectFrom('org_memberships').select('user_id')
          .where('org_id', '=', org.id).where('role', '=', 'owner').execute();
        assert.equal(owners.length, 1, 'the org keeps an owner');
      }
    });

    test('account deletion and a login (its session and login.succeeded event) of one account', async () => {
      const actor = { type: 'system' as const, id: null };
      const users: string[] = [];
      // The session row's foreign key share-locks the user's row before the append takes the
      // head; a deletion holds that row first: the login waits, then fails on the missing user
      // or commits before the deletion, whose cascade ends its session.
      const outcomes = await race('delete vs login', async () => {
        const { userId } = await newUser('del-login');
        users.push(userId);
        const user = await s.services.users.findById(userId);
        const profile = await s.services.pii.getProfile(userId);
        assert.ok(user && profile);
        return () => [
          s.services.accounts.delete(userId, actor, null),
          s.services.login.completeLogin({ user, profile, meta, mfaVerified: false, mfaMethod: null }),
        ];
      });
      assertFulfilled(outcomes, 0);
      const left = await s.services.stores.main.db.selectFrom('sessions').select('user_id').where('user_id', 'in', users).execute();
      assert.deepEqual(left, [], 'no session outlives its deleted account');
      assert.equal((await s.services.audit.verify()).valid, true);
    });

    test('account deletion and a password reset of one account', async () => {
      const actor = { type: 'system' as const, id: null };
      const password = strongPassword();
      await race('delete vs reset', async () => {
        const { userId } = await newUser('del-reset');
        const { token, row } = s.services.passwordTokens.issue(userId, 'reset', 3_600_000);
        await s.services.stores.main.db.insertInto('password_tokens').values(row).execute();
        return () => [
          // The reset hashes the new password before its transaction: the deletion starts a
          // little later, so that the two transactions overlap.
          delay(RESET_HEAD_START_MS).then(() => s.services.accounts.delete(userId, actor, null)),
          s.services.passwordReset.reset(token, password, meta),
        ];
      });
    });

    test('account deletion and a staff role revocation (and a grant) of one account', async () => {
      const actor = { type: 'system' as const, id: null };
      // A revocation deleted the grant (a row of the user's, which the deletion's cascade deletes),
      // then appended its event: the user's row came after another of the user's rows.
      const revocations = await race('delete vs revoke', async () => {
        const { userId, email } = await newUser('del-staff', 1);
        await s.services.staff.grant(email, 'operator', 'test');
        return () => [s.services.accounts.delete(userId, actor, null), s.services.staff.revoke(email, 'operator', 'test')];
      });
      assertFulfilled(revocations, 0);
      await race('delete vs grant', async () => {
        const { userId, email } = await newUser('del-grant', 1);
        await s.services.staff.grant(email, 'security', 'test');
        return () => [s.services.accounts.delete(userId, actor, null), s.services.staff.grant(email, 'operator', 'test')];
      });
    });

    test('org creation and invitation acceptance by one user', async () => {
      const owner = await newUser('inv-owner');
      const outcomes = await race('create org vs accept invitation', async () => {
        const org = await s.services.orgs.createOrg(owner.userId, { name: 'Lock order', slug: uniqueSlug('lock-inv') }, meta);
        const invitee = await newUser('inv-user');
        const token = await inviteDirectly(org.id, owner.userId, invitee.email);
        return () => [
          s.services.orgs.acceptInvitation(invitee.userId, token, meta),
          s.services.orgs.createOrg(invitee.userId, { name: 'Own', slug: uniqueSlug('lock-own') }, meta),
        ];
      });
      assertFulfilled(outcomes, 0);
      assertFulfilled(outcomes, 1);
    });
  
    test('an unverified user accepting an invitation and a role change in that org', async () => {
      const outcomes = await race('accept (verifies the address) vs change role', async () => {
        const owner = await newUser('verify-owner');
        const org = await s.services.orgs.createOrg(owner.userId, { name: 'Verify', slug: uniqueSlug('lock-verify') }, meta);
        const member = await newUser('verify-member');
        await s.services.orgs.addMember(org.id, member.userId, 'member', { type: 'system', id: null });
        const invitee = await newUser('verify-invitee');
        const token = await inviteDirectly(org.id, owner.userId, invitee.email);
        return () => [
          s.services.orgs.acceptInvitation(invitee.userId, token, meta),
          s.services.orgs.changeRole({ kind: 'session', userId: owner.userId, scopes: null }, org.id, member.userId, 'admin', meta),
        ];
      });
      assertFulfilled(outcomes, 0);
      assertFulfilled(outcomes, 1);
    });

    test('an unverified user\'s password reset and the same user ending their sessions', async () => {
      const password = strongPassword();
      await race('reset (verifies the address) vs ending sessions', async () => {
        const { userId } = await newUser('verify-reset');
        const profile = (await s.services.pii.getProfile(userId))!;
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) {
          ids.push((await s.services.sessions.create({
            userId, profile, ip: '127.0.0.1', userAgent: null, mfaVerified: false, mfaMethod: null, limits: { idleTimeoutMinutes: 60, absoluteTimeoutHours: 12 },
          })).row.public_id);
        }
        const { token, row } = s.services.passwordTokens.issue(userId, 'reset', 3_600_000);
        await s.services.stores.main.db.insertInto('password_tokens').values(row).execute();
        return () => [
          s.services.passwordReset.reset(token, password, meta),
          (async () => {
            for (const id of ids) await s.services.sessions.endOwnByPublicId(userId, id, meta).catch(() => undefined);
          })(),
        ];
      });
    });
  });
}
