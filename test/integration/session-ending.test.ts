/**
 * Ending sessions at a user's request, at the domain level (SessionService), on
 * SQLite and PostgreSQL: logout, a sign-in replacing the browser's session, one
 * session by its public id, all but the current one. Each must delete the row,
 * stop the cookie from authenticating (the read cache included) and record its
 * `session.revoked` event in the audit log, in one transaction with the delete.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomId } from '../../src/crypto/random.js';
import { SecurityEvents } from '../../src/events/security-events.js';
import { type IssuedSession, SessionService } from '../../src/sessions/session-service.js';
import { SessionRepository } from '../../src/store/repositories/sessions.js';
import { startTestServices, type TestServices } from '../helpers/services.js';

const ORIGIN = { ip: '203.0.113.9', userAgent: 'session-ending-test/1.0', requestId: 'req-session-ending' };
const LIMITS = { idleTimeoutMinutes: 30, absoluteTimeoutHours: 12 };

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`SessionService: ending sessions (${store})`, () => {
    let s: TestServices;
    before(async () => {
      s = await startTestServices({ store });
    });
    after(async () => {
      await s.close();
    });

    async function newUser(): Promise<string> {
      const { services, clock } = s;
      const userId = randomId('usr');
      await services.users.insert({
        id: userId, status: 'active', password_hash: '$argon2id$unused', password_changed_at: clock.now(),
        email_verified: 1, mfa_enabled: 0, created_at: clock.now(), updated_at: clock.now(),
      });
      await services.pii.createProfile(userId, `${userId}@example.com`, null);
      return userId;
    }

    async function openSession(userId: string): Promise<IssuedSession> {
      const profile = (await s.services.pii.getProfile(userId))!;
      const issued = await s.services.sessions.create({ userId, profile, ip: ORIGIN.ip, userAgent: ORIGIN.userAgent, mfaVerified: false, mfaMethod: null, limits: LIMITS });
      // Authenticated once, so the session sits in the read cache that ending it must empty.
      assert.ok(await s.services.sessions.authenticate(issued.secret));
      return issued;
    }

    async function revokedEvents(userId: string) {
      return (await s.services.audit.latest({ userId, action: 'session.revoked', limit: 50 })).events;
    }

    async function isStored(issued: IssuedSession): Promise<boolean> {
      return (await s.services.sessions.findBySecret(issued.secret)) !== null;
    }

    test('end (logout): the row is deleted, the cookie stops working, and session.revoked is in the audit log; a second end records nothing', async () => {
      const userId = await newUser();
      const issued = await openSession(userId);
      const other = await openSession(userId);
      assert.equal(await s.services.sessions.end(issued.row, 'logout', ORIGIN), true);
      assert.equal(await isStored(issued), false, 'the row is gone');
      assert.equal(await s.services.sessions.authenticate(issued.secret), null, 'the cookie no longer authenticates');
      assert.equal(await isStored(other), true, 'the user\'s other session lives on');
      const events = await revokedEvents(userId);
      assert.equal(events.length, 1);
      const [event] = events;
      assert.deepEqual(event!.actor, { type: 'user', id: userId });
      assert.deepEqual(event!.target, { type: 'session', id: issued.row.public_id });
      assert.deepEqual(event!.details, { reason: 'logout' });
      assert.equal(event!.outcome, 'success');
      assert.equal(event!.requestId, ORIGIN.requestId);

      assert.equal(await s.services.sessions.end(issued.row, 'logout', ORIGIN), false, 'already ended');
      assert.equal((await revokedEvents(userId)).length, 1, 'no event for a session that was already gone');
    });

    test('endReplaced: the session a cookie names ends with reason replaced; an unknown or malformed secret ends nothing', async () => {
      const userId = await newUser();
      const issued = await openSession(userId);
      assert.equal(await s.services.sessions.endReplaced('A'.repeat(43), ORIGIN), false);
      assert.equal(await s.services.sessions.endReplaced('not a secret', ORIGIN), false);
      assert.equal(await s.services.sessions.endReplaced(issued.secret, ORIGIN), true);
      assert.equal(await isStored(issued), false);
      assert.equal(await s.services.sessions.authenticate(issued.secret), null);
      const events = await revokedEvents(userId);
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]!.details, { reason: 'replaced' });
      assert.deepEqual(events[0]!.target, { type: 'session', id: issued.row.public_id });
    });

    test('endOwnByPublicId: ends the user\'s own session (reason user); another user\'s session id is not_found and that session lives on', async () => {
      const userId = await newUser();
      const stranger = await newUser();
      const mine = await openSession(userId);
      const theirs = await openSession(stranger);
      await assert.rejects(s.services.sessions.endOwnByPublicId(userId, theirs.row.public_id, ORIGIN), { code: 'not_found' });
      await assert.rejects(s.services.sessions.endOwnByPublicId(userId, randomId('ses'), ORIGIN), { code: 'not_found' });
      assert.equal(await isStored(theirs), true, 'another user\'s session is untouched');
      assert.equal((await revokedEvents(stranger)).length, 0);

      await s.services.sessions.endOwnByPublicId(userId, mine.row.public_id, ORIGIN);
      assert.equal(await isStored(mine), false);
      assert.equal(await s.services.sessions.authenticate(mine.secret), null);
      const events = await revokedEvents(userId);
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]!.details, { reason: 'user' });
      assert.deepEqual(events[0]!.target, { type: 'session', id: mine.row.public_id });
    });

    test('endAllOthers: every other session of the user ends, the kept one and other users\' live on; one event with the count', async () => {
      const userId = await newUser();
      const stranger = await newUser();
      const kept = await openSession(userId);
      const others = [await openSession(userId), await openSession(userId)];
      const theirs = await openSession(stranger);
      assert.equal(await s.services.sessions.endAllOthers(userId, kept.row.id_hash, ORIGIN), 2);
      for (const other of others) {
        assert.equal(await isStored(other), false);
        assert.equal(await s.services.sessions.authenticate(other.secret), null);
      }
      assert.ok(await s.services.sessions.authenticate(kept.secret), 'the asking session lives on');
      assert.equal(await isStored(theirs), true);
      const events = await revokedEvents(userId);
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]!.details, { reason: 'all_others', count: 2 });
      assert.deepEqual(events[0]!.target, { type: 'user', id: userId });
    });

    test('the delete and its event commit together: when the event cannot be recorded, the session is not ended', async () => {
      const userId = await newUser();
      const issued = await openSession(userId);
      const other = await openSession(userId);
      const { services, clock } = s;
      const failing = new SecurityEvents(clock);
      failing.addSink({ record: () => Promise.reject(new Error('audit store unavailable')) });
      const sessions = new SessionService(new SessionRepository(services.stores.main.db), services.pii, services.keyring, clock, services.stores.main.changes, services.stores.main.db, failing);
      await assert.rejects(sessions.end(issued.row, 'logout', ORIGIN), /audit store unavailable/);
      await assert.rejects(sessions.endOwnByPublicId(userId, issued.row.public_id, ORIGIN), /audit store unavailable/);
      await assert.rejects(sessions.endAllOthers(userId, other.row.id_hash, ORIGIN), /audit store unavailable/);
      assert.equal(await isStored(issued), true, 'rolled back: no unrecorded ending');
      assert.ok(await s.services.sessions.authenticate(issued.secret));
    });
  });
}
