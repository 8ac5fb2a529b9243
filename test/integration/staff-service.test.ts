/**
 * StaffService at the service level, on SQLite and PostgreSQL: the controls of
 * assuming a role and of acting in one, each driven past the HTTP layer so the
 * one check under test is the only thing that can refuse.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql, type Transaction } from 'kysely';
import { randomId } from '../../src/crypto/random.js';
import type { SecurityEvent } from '../../src/events/security-events.js';
import type { ActiveSession } from '../../src/sessions/session-service.js';
import { parseStaffConflicts } from '../../src/staff/staff-roles.js';
import { StaffService } from '../../src/staff/staff-service.js';
import { StaffRepository } from '../../src/store/repositories/staff.js';
import type { MainDB } from '../../src/store/schema.js';
import { startTestServices, type TestServices } from '../helpers/services.js';

const META = { ip: '203.0.113.7', userAgent: 'staff-service-test/1.0', requestId: 'req-staff-service' };
const LIMITS = { idleTimeoutMinutes: 30, absoluteTimeoutHours: 12 };

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`StaffService (${store})`, () => {
    let s: TestServices;
    const events: SecurityEvent[] = [];
    before(async () => {
      s = await startTestServices({ store });
      s.services.events.addSink({ record: (event) => void events.push(structuredClone(event)) });
    });
    after(async () => {
      await s.close();
    });

    /** A staff member with a second factor and `role` granted (rows written directly: no HTTP, no TOTP). */
    async function staffMember(role: string): Promise<{ userId: string; email: string }> {
      const { services, clock } = s;
      const userId = randomId('usr');
      const email = `${userId}@example.com`;
      await services.users.insert({
        id: userId, status: 'active', password_hash: '$argon2id$unused', password_changed_at: clock.now(),
        email_verified: 1, mfa_enabled: 1, created_at: clock.now(), updated_at: clock.now(),
      });
      await services.pii.createProfile(userId, email, null);
      await services.staff.grant(email, role, 'test');
      return { userId, email };
    }

    async function openSession(userId: string, mfaVerified: boolean): Promise<ActiveSession> {
      const profile = (await s.services.pii.getProfile(userId))!;
      const issued = await s.services.sessions.create({
        userId, profile, ip: META.ip, userAgent: META.userAgent, mfaVerified, mfaMethod: mfaVerified ? 'totp' : null, limits: LIMITS,
      });
      return (await s.services.sessions.findLiveByPublicId(issued.row.public_id))!;
    }

    /** services.staff with another repository (the wiring of src/services.ts otherwise). */
    function staffServiceWith(repo: StaffRepository): StaffService {
      const { services } = s;
      return new StaffService({
        db: services.stores.main.db, repo, users: services.users, pii: services.pii, sessions: services.sessions,
        accounts: services.accounts, events: services.events, clock: services.clock,
        conflicts: parseStaffConflicts(services.config.staffConflictingRoles),
        resetMfa: (userId, actor, meta) => services.mfa.reset(userId, actor, meta),
      });
    }

    test('a grant revoked after assume() checked it, before its transaction, yields no assumption', async () => {
      const staff = await staffMember('support');
      const session = await openSession(staff.userId, true);
      const db = s.services.stores.main.db;
      // The race, made deterministic: the revocation (another instance, the CLI) lands right
      // after the grant was read outside the transaction and before the assumption is stored.
      class RevokedAfterCheck extends StaffRepository {
        override async holds(userId: string, role: string, executor?: Kysely<MainDB> | Transaction<MainDB>): Promise<boolean> {
          const held = await super.holds(userId, role, executor);
          if (executor === undefined || executor === db) await s.services.staff.revoke(staff.email, role, 'concurrent revocation');
          return held;
        }
      }
      const racing = staffServiceWith(new RevokedAfterCheck(db, store === 'postgres'));
      await assert.rejects(racing.assume(session, { role: 'support', reason: 'ticket SUP-42 lookup' }, META), { code: 'forbidden' });
      assert.deepEqual(await s.services.staff.rolesOf(staff.userId), [], 'the grant is gone');
      assert.equal(await new StaffRepository(db).findAssumption(session.public_id), undefined, 'and no assumption of it was stored');
      assert.ok(!events.some((e) => e.action === 'staff_role.assumed' && e.actor.id === staff.userId));
      const denied = events.findLast((e) => e.action === 'access.denied' && e.actor.id === staff.userId);
      assert.equal(denied?.details?.['reason'], 'staff_role_not_granted');
      assert.equal(denied?.requestId, META.requestId);

      // Control: without the revocation the same call assumes the role.
      await s.services.staff.grant(staff.email, 'support', 'test');
      const assumed = await staffServiceWith(new StaffRepository(db, store === 'postgres')).assume(session, { role: 'support', reason: 'ticket SUP-42 lookup' }, META);
      assert.equal(assumed.role, 'support');
      assert.equal((await new StaffRepository(db).findAssumption(session.public_id))?.role, 'support');
    });

    if (store === 'postgres') {
      test('inside the assumption\'s transaction the grant row is share-locked: a concurrent revocation waits for it', async () => {
        const staff = await staffMember('auditor');
        const db = s.services.stores.main.db;
        const repo = new StaffRepository(db, true);
        await db.transaction().execute(async (trx) => {
          assert.equal(await repo.holdGrant(staff.userId, 'auditor', trx), true);
          // Another connection tries to delete the grant while the lock is held.
          await assert.rejects(db.transaction().execute(async (other) => {
            await sql`set local lock_timeout = '200ms'`.execute(other);
            await other.deleteFrom('staff_roles').where('user_id', '=', staff.userId).where('role', '=', 'auditor').execute();
          }), /lock timeout/);
        });
        assert.deepEqual(await repo.rolesOf(staff.userId), ['auditor'], 'the revocation waited and was abandoned');
        assert.equal(await db.transaction().execute((trx) => repo.holdGrant(staff.userId, 'nobody', trx)), false);
      });
    }

    test('assertActing refuses a session that did not prove a second factor, even with an assumption row', async () => {
      const staff = await staffMember('operator');
      const repo = new StaffRepository(s.services.stores.main.db);
      const now = s.clock.now();
      const assumeDirectly = (session: ActiveSession) => repo.insertAssumption({
        session_public_id: session.public_id, user_id: staff.userId, role: 'operator', reason: 'ticket OPS-1 direct row', assumed_at: now, expires_at: now + 30 * 60_000,
      });
      // A password-only session (mfa_verified 0) of an account that has a factor, with a live,
      // granted assumption allowing the action: only the MFA check stands in the way.
      const unverified = await openSession(staff.userId, false);
      assert.equal(unverified.mfa_verified, 0);
      assert.equal(unverified.user_mfa_enabled, 1);
      await assumeDirectly(unverified);
      await assert.rejects(s.services.staff.assertActing(unverified, 'users.lock', META), { code: 'forbidden' });
      const denied = events.findLast((e) => e.action === 'access.denied' && e.target?.id === unverified.public_id);
      assert.equal(denied?.details?.['reason'], 'staff_mfa_required');
      assert.equal(denied?.details?.['action'], 'users.lock');

      // Control: the same assumption on an MFA-verified session acts.
      const verified = await openSession(staff.userId, true);
      await assumeDirectly(verified);
      const acting = await s.services.staff.assertActing(verified, 'users.lock', META);
      assert.deepEqual(acting, { userId: staff.userId, role: 'operator', reason: 'ticket OPS-1 direct row', sessionPublicId: verified.public_id });
    });
  });
}
