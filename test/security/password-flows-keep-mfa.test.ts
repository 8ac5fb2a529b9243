/**
 * Attack: a password reset (or an expired-password change) used as a way
 * around the second factor. Whoever controls the mailbox, or knows the old
 * password, must still prove the factor before any session exists (ASVS V6.4.3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import type { TestClient } from '../helpers/client.js';
import { enrollTOTP, nextStep, passwordStep, totpNow } from '../helpers/mfa.js';
import { expiringPasswords } from '../helpers/policies.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

const DAY = 86_400_000;

describe('password reset and expiry never bypass the second factor', () => {
  let t: TestServer;
  let expiring: Set<string>;
  before(async () => {
    t = await startTestServer();
    ({ expiring } = expiringPasswords(t.server.services, 30));
  });
  after(async () => {
    await t.close();
  });

  test('after a reset, the next login still stops at the MFA step', async () => {
    const { client, email, password } = await signUp(t, 'mfareset');
    await enrollTOTP(t, client, password);
    await t.client().post('/v1/password/forgot', { email });
    await t.server.services.background.settled();
    const token = resetTokenFrom(readOutbox(t.dataDir).find((mail) => mail.to === email && /Reset/.test(mail.subject))!);
    const newPassword = strongPassword();
    const reset = await t.client().post('/v1/password/reset', { token, password: newPassword });
    assert.equal(reset.status, 204);
    assert.deepEqual(reset.setCookies, []);
    const login = await t.client().post('/v1/login', { email, password: newPassword });
    assert.equal(login.body.mfaRequired, true, 'the factor is still required');
    assert.equal(login.body.session, undefined);
  });

  test('an expired password is changed first, then the second factor, then the session', async () => {
    const { client, email, password, userId } = await signUp(t, 'mfaexpiry');
    const { secret } = await enrollTOTP(t, client, password);
    expiring.add(userId);
    t.clock.advance(31 * 86_400_000);
    const first = await t.client().post('/v1/login', { email, password });
    assert.equal(first.body.passwordChangeRequired, true, 'expiry is checked before the factor');
    const fresh = t.client();
    const changed = await fresh.post('/v1/password/change-expired', { changeToken: first.body.changeToken, password: strongPassword() });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.mfaRequired, true, 'the second factor comes next');
    assert.equal(changed.body.session, undefined);
    assert.equal(fresh.cookies.get(SESSION_COOKIE), undefined, 'no session before the factor');
    const done = await fresh.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: totpNow(t, secret) });
    assert.equal(done.status, 200);
    assert.equal(done.body.session.mfaVerified, true);
  });
});

/**
 * Attack: someone who knows only an expired password of a user with a second
 * factor (an old leak: that is why it expired) redeems the change token with a
 * password of their own and never proves the factor. Were the new password
 * committed at change-expired, the owner would be locked out and the attacker
 * would hold the only working password. The new password is held (as an
 * argon2id hash on the mfaToken row) and only becomes the password, with its
 * mail, audit event and session revocation, when the factor is proved.
 */
for (const store of ['sqlite', 'postgres'] as const) {
  describe(`an expired password is only replaced once the second factor is proved (${store})`, () => {
    let t: TestServer;
    let expiring: Set<string>;
    /** Users under an org-style MFA requirement, with the time it started. */
    let mfaRequiredSince: Map<string, number>;
    before(async () => {
      t = await startTestServer({ store });
      ({ expiring, mfaRequiredSince } = expiringPasswords(t.server.services, 30));
    });
    after(async () => {
      await t.close();
    });

    async function countEvents(userId: string, action: string): Promise<number> {
      const rows = await t.server.services.stores.main.db.selectFrom('audit_events').select('action')
        .where('user_id', '=', userId).where('action', '=', action).execute();
      return rows.length;
    }

    async function changedMails(email: string): Promise<number> {
      await t.server.services.background.settled();
      return readOutbox(t.dataDir).filter((mail) => mail.to === email && /password was changed/.test(mail.subject)).length;
    }

    async function pendingHashes(userId: string): Promise<number> {
      const rows = await t.server.services.stores.main.db.selectFrom('mfa_login_tokens').select('pending_password_hash')
        .where('user_id', '=', userId).where('pending_password_hash', 'is not', null).execute();
      return rows.length;
    }

    /**
     * An MFA user whose password just expired, with a live session of the owner
     * (made just before the policy turned expiry on) and the change token a
     * login with the expired password answered.
     */
    async function expiredMfaUser(label: string) {
      const user = await signUp(t, label);
      const { secret, recoveryCodes } = await enrollTOTP(t, user.client, user.password);
      t.clock.advance(31 * DAY);
      const owner = t.client();
      const { mfaToken } = await passwordStep(owner, user.email, user.password);
      assert.equal((await owner.post('/v1/login/mfa', { mfaToken, totp: totpNow(t, secret) })).status, 200);
      nextStep(t);
      expiring.add(user.userId);
      const login = await t.client().post('/v1/login', { email: user.email, password: user.password });
      assert.equal(login.body.passwordChangeRequired, true);
      return { ...user, client: owner, secret, recoveryCodes, changeToken: login.body.changeToken as string };
    }

    /** A user without a factor whose password just expired, with a live session of the owner. */
    async function expiredUser(label: string) {
      const user = await signUp(t, label);
      t.clock.advance(31 * DAY);
      const owner = t.client();
      assert.ok((await owner.post('/v1/login', { email: user.email, password: user.password })).body.session);
      expiring.add(user.userId);
      return { ...user, client: owner };
    }

    async function sessionsSince(userId: string, since: number): Promise<number> {
      const rows = await t.server.services.stores.main.db.selectFrom('sessions').select('id_hash')
        .where('user_id', '=', userId).where('created_at', '>=', since).execute();
      return rows.length;
    }

    async function assertPasswordUnchanged(u: { email: string; password: string; userId: string; client: TestClient }, rejected: string): Promise<void> {
      const withNew = await t.client().post('/v1/login', { email: u.email, password: rejected });
      assert.equal(withNew.status, 401, 'the new password was never committed');
      assert.equal(withNew.body.code, 'invalid_credentials');
      const withOld = await t.client().post('/v1/login', { email: u.email, password: u.password });
      assert.equal(withOld.body.passwordChangeRequired, true, 'the old (expired) password is still the password');
      assert.equal((await u.client.get('/v1/session')).status, 200, "the owner's session was not revoked");
      assert.equal(await countEvents(u.userId, 'password.changed'), 0, 'no password.changed event');
      assert.equal(await changedMails(u.email), 0, 'no "password changed" mail');
    }

    test('an abandoned MFA step changes nothing, and the hash dies with the token', async () => {
      const u = await expiredMfaUser('abandoned');
      const attackStart = t.clock.now();
      const attacker = t.client();
      const newPassword = strongPassword();
      const changed = await attacker.post('/v1/password/change-expired', { changeToken: u.changeToken, password: newPassword });
      assert.equal(changed.status, 200);
      assert.deepEqual(Object.keys(changed.body).sort(), ['methods', 'mfaRequired', 'mfaToken']);
      assert.deepEqual(changed.setCookies, [], 'no session before the factor');
      assert.equal(await pendingHashes(u.userId), 1, 'the new password waits on the MFA step');
      const held = await t.server.services.stores.main.db.selectFrom('mfa_login_tokens').select('pending_password_hash')
        .where('user_id', '=', u.userId).executeTakeFirstOrThrow();
      assert.match(held.pending_password_hash!, /^\$argon2id\$/, 'held as an argon2id hash, never in clear');
      await assertPasswordUnchanged(u, newPassword);

      const replay = await t.client().post('/v1/password/change-expired', { changeToken: u.changeToken, password: strongPassword() });
      assert.equal(replay.body.code, 'invalid_token', 'the change token is single use even though nothing was committed');

      t.clock.advance(5 * 60_000);
      const late = await attacker.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: totpNow(t, u.secret) });
      assert.equal(late.status, 401);
      assert.equal(late.body.code, 'mfa_token_expired', 'the step lives 5 minutes');
      await assertPasswordUnchanged(u, newPassword);
      assert.equal(await sessionsSince(u.userId, attackStart), 0, 'no session was made for the attacker');
      // Expired steps are swept at the next MFA challenge: the held hash goes with them.
      assert.equal((await t.client().post('/v1/login', { email: u.email, password: u.password })).body.passwordChangeRequired, true);
      const other = await signUp(t, 'sweeper');
      await enrollTOTP(t, other.client, other.password);
      await passwordStep(t.client(), other.email, other.password);
      assert.equal(await pendingHashes(u.userId), 0);
    });

    test('three wrong factors kill the step: the old password stays, the new one never works', async () => {
      const u = await expiredMfaUser('wrongfactor');
      const attacker = t.client();
      const newPassword = strongPassword();
      const changed = await attacker.post('/v1/password/change-expired', { changeToken: u.changeToken, password: newPassword });
      assert.equal(changed.body.mfaRequired, true);
      for (const guess of ['000000', '111111', '222222']) {
        const wrong = await attacker.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: guess === totpNow(t, u.secret) ? '333333' : guess });
        assert.equal(wrong.body.code, 'invalid_mfa');
      }
      assert.equal(await pendingHashes(u.userId), 0, 'the spent step took the held hash with it');
      const right = await attacker.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: totpNow(t, u.secret) });
      assert.equal(right.body.code, 'mfa_token_expired', 'even the right code cannot revive a spent step');
      assert.deepEqual(right.setCookies, []);
      await assertPasswordUnchanged(u, newPassword);
    });

    test('the factor proved, the new password is committed with its event, mail and revocation', async () => {
      const u = await expiredMfaUser('proved');
      const fresh = t.client();
      const newPassword = strongPassword();
      const changed = await fresh.post('/v1/password/change-expired', { changeToken: u.changeToken, password: newPassword });
      assert.equal(changed.body.mfaRequired, true);
      assert.equal(await countEvents(u.userId, 'password.changed'), 0);
      const done = await fresh.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: totpNow(t, u.secret) });
      assert.equal(done.status, 200);
      assert.equal(done.body.session.mfaVerified, true);
      assert.equal(done.body.user.id, u.userId);
      assert.ok(fresh.cookies.get(SESSION_COOKIE));
      assert.equal((await fresh.get('/v1/session')).status, 200, 'the new session works');
      assert.equal((await u.client.get('/v1/session')).status, 401, 'sessions from before the change ended');
      assert.equal(await countEvents(u.userId, 'password.changed'), 1);
      assert.equal(await changedMails(u.email), 1);
      assert.equal(await pendingHashes(u.userId), 0);

      const withOld = await t.client().post('/v1/login', { email: u.email, password: u.password });
      assert.equal(withOld.status, 401, 'the expired password is gone');
      nextStep(t);
      const withNew = await passwordStep(t.client(), u.email, newPassword);
      assert.ok(withNew.mfaToken, 'the new password is fresh: straight to the second factor');
      const reuse = await t.client().post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: totpNow(t, u.secret) });
      assert.equal(reuse.body.code, 'mfa_token_expired', 'the step is single use');
    });

    test('a recovery code completes the step too, and a second pending change dies with the commit', async () => {
      const u = await expiredMfaUser('recovery');
      const first = await t.client().post('/v1/password/change-expired', { changeToken: u.changeToken, password: strongPassword() });
      assert.equal(first.body.mfaRequired, true);
      // The owner, meanwhile, logs in with the expired password again and picks their own.
      const second = await t.client().post('/v1/login', { email: u.email, password: u.password });
      const ownPassword = strongPassword();
      const owner = t.client();
      const changed = await owner.post('/v1/password/change-expired', { changeToken: second.body.changeToken, password: ownPassword });
      assert.equal(await pendingHashes(u.userId), 2);
      const done = await owner.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, recoveryCode: u.recoveryCodes[0] });
      assert.equal(done.status, 200);
      assert.equal(await pendingHashes(u.userId), 0, 'a password change voids the other steps begun with the old password');
      nextStep(t);
      const stale = await t.client().post('/v1/login/mfa', { mfaToken: first.body.mfaToken, totp: totpNow(t, u.secret) });
      assert.equal(stale.body.code, 'mfa_token_expired');
      nextStep(t);
      assert.ok((await passwordStep(t.client(), u.email, ownPassword)).mfaToken, "the owner's password holds");
    });

    test('without a factor the password is committed with the session, as before', async () => {
      const { client, email, password, userId } = await expiredUser('nofactor');
      const { changeToken } = (await t.client().post('/v1/login', { email, password })).body;
      const newPassword = strongPassword();
      const fresh = t.client();
      const done = await fresh.post('/v1/password/change-expired', { changeToken, password: newPassword });
      assert.equal(done.status, 200);
      assert.ok(done.body.session);
      assert.equal((await client.get('/v1/session')).status, 401);
      assert.equal(await countEvents(userId, 'password.changed'), 1);
      assert.equal(await changedMails(email), 1);
      assert.ok((await t.client().post('/v1/login', { email, password: newPassword })).body.session);
      assert.equal((await t.client().post('/v1/login', { email, password })).status, 401);
    });

    test('an org requiring MFA during the grace period: commit, then an enrollment-only session', async () => {
      const { email, password, userId } = await signUp(t, 'graceexpiry');
      expiring.add(userId);
      t.clock.advance(31 * DAY);
      mfaRequiredSince.set(userId, t.clock.now());
      const { changeToken } = (await t.client().post('/v1/login', { email, password })).body;
      const newPassword = strongPassword();
      const fresh = t.client();
      const done = await fresh.post('/v1/password/change-expired', { changeToken, password: newPassword });
      assert.equal(done.status, 200);
      assert.equal(done.body.enrollmentRequired, true);
      assert.equal(done.body.session.mfaVerified, false);
      assert.equal(await countEvents(userId, 'password.changed'), 1);
      assert.equal((await t.client().post('/v1/login', { email, password: newPassword })).body.enrollmentRequired, true);
      assert.equal((await t.client().post('/v1/login', { email, password })).status, 401);
    });

    test('after the grace period the refused login changes nothing', async () => {
      const { email, password, userId } = await signUp(t, 'graceover');
      expiring.add(userId);
      mfaRequiredSince.set(userId, t.clock.now());
      t.clock.advance(31 * DAY);
      const { changeToken } = (await t.client().post('/v1/login', { email, password })).body;
      const newPassword = strongPassword();
      const refused = await t.client().post('/v1/password/change-expired', { changeToken, password: newPassword });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'mfa_enrollment_required');
      assert.equal(await countEvents(userId, 'password.changed'), 0);
      assert.equal((await t.client().post('/v1/login', { email, password: newPassword })).status, 401);
      assert.equal((await t.client().post('/v1/login', { email, password })).body.passwordChangeRequired, true);
    });
  });
}
