import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, nextStep, passwordStep, stepUp, totpNow } from '../helpers/mfa.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`TOTP and recovery codes over HTTPS (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('enroll → logout → login with TOTP → recovery code → regenerate', async () => {
      const { client, email, password, userId } = await signUp(t, 'totp');
      const empty = await client.get('/v1/me/mfa');
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.body, { totp: false, webauthn: [], recoveryCodesLeft: 0, enrollmentRequired: false, enrollBefore: null });

      // Enrollment needs a fresh step-up; a login alone is not enough.
      const early = await client.post('/v1/me/mfa/totp');
      assert.equal(early.status, 403);
      assert.equal(early.body.code, 'reauth_required');
      await stepUp(client, password);
      const start = await client.post('/v1/me/mfa/totp');
      assert.equal(start.status, 200);
      assert.match(start.body.secret, /^[A-Z2-7]{32}$/, '160-bit base32 seed');
      const uri = new URL(start.body.otpauthUri);
      assert.equal(uri.searchParams.get('secret'), start.body.secret);
      assert.equal(uri.searchParams.get('issuer'), 'Rampart');
      assert.equal((await client.get('/v1/me/mfa')).body.totp, false, 'pending until confirmed');

      const wrong = await client.post('/v1/me/mfa/totp/confirm', { code: totpNow(t, start.body.secret) === '000000' ? '000001' : '000000' });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.code, 'invalid_mfa');
      const cookieBefore = client.cookies.get(SESSION_COOKIE);
      const confirm = await client.post('/v1/me/mfa/totp/confirm', { code: totpNow(t, start.body.secret) });
      assert.equal(confirm.status, 200);
      const codes: string[] = confirm.body.recoveryCodes;
      assert.equal(codes.length, 10);
      assert.equal(new Set(codes).size, 10);
      assert.notEqual(client.cookies.get(SESSION_COOKIE), cookieBefore, 'the session proved a factor: new secret (privilege change)');
      const session = await client.get('/v1/session');
      assert.equal(session.body.user.mfaEnabled, true);
      assert.equal(session.body.session.mfaVerified, true);
      const status = await client.get('/v1/me/mfa');
      assert.equal(status.body.totp, true);
      assert.equal(status.body.recoveryCodesLeft, 10);
      const again = await client.post('/v1/me/mfa/totp');
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'totp_already_enabled');
      nextStep(t);

      assert.equal((await client.post('/v1/logout')).status, 204);

      // Password alone: the MFA step, and no session.
      const fresh = t.client();
      const login = await fresh.post('/v1/login', { email, password });
      assert.equal(login.status, 200);
      assert.equal(login.body.mfaRequired, true);
      assert.deepEqual(login.body.methods, ['totp', 'recovery_code']);
      assert.match(login.body.mfaToken, /^[A-Za-z0-9_-]{43}$/, '256-bit token');
      assert.equal(login.body.user, undefined);
      assert.ok(!login.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)), 'no session cookie before the second factor');
      // The MFA-pending token is no credential (ASVS V2.3.1, V9.2.2).
      assert.equal((await t.client().get('/v1/session', { headers: { authorization: `Bearer ${login.body.mfaToken}` } })).status, 401);
      assert.equal((await fresh.get('/v1/session')).status, 401);

      const done = await fresh.post('/v1/login/mfa', { mfaToken: login.body.mfaToken, totp: totpNow(t, start.body.secret) });
      assert.equal(done.status, 200);
      assert.equal(done.body.user.id, userId);
      assert.equal(done.body.user.mfaEnabled, true);
      assert.equal(done.body.session.mfaVerified, true);
      assert.ok(done.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)));
      const row = await t.server.services.stores.main.db.selectFrom('sessions').select(['mfa_verified', 'mfa_method']).where('public_id', '=', done.body.session.id).executeTakeFirstOrThrow();
      assert.deepEqual({ ...row }, { mfa_verified: 1, mfa_method: 'totp' });
      assert.equal((await fresh.get('/v1/session')).status, 200);
      nextStep(t);

      // A recovery code, typed loosely, completes a login once.
      const recovery = t.client();
      const step = await passwordStep(recovery, email, password);
      const viaCode = await recovery.post('/v1/login/mfa', { mfaToken: step.mfaToken, recoveryCode: codes[0]!.toUpperCase().replaceAll('-', ' ') });
      assert.equal(viaCode.status, 200);
      const recoveryRow = await t.server.services.stores.main.db.selectFrom('sessions').select('mfa_method').where('public_id', '=', viaCode.body.session.id).executeTakeFirstOrThrow();
      assert.equal(recoveryRow.mfa_method, 'recovery_code');
      assert.equal((await recovery.get('/v1/me/mfa')).body.recoveryCodesLeft, 9);
      const reuse = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, recoveryCode: codes[0] });
      assert.equal(reuse.status, 401);
      assert.equal(reuse.body.code, 'invalid_mfa', 'a recovery code works once (ASVS V6.5.1)');

      // Regenerate: needs step-up; the old codes die.
      const noStepUp = await recovery.post('/v1/me/mfa/recovery-codes');
      assert.equal(noStepUp.status, 403);
      assert.equal(noStepUp.body.code, 'reauth_required');
      await stepUp(recovery, password);
      const regenerated = await recovery.post('/v1/me/mfa/recovery-codes');
      assert.equal(regenerated.status, 200);
      const newCodes: string[] = regenerated.body.recoveryCodes;
      assert.equal(newCodes.length, 10);
      assert.equal(newCodes.filter((code) => codes.includes(code)).length, 0);
      assert.equal((await recovery.get('/v1/me/mfa')).body.recoveryCodesLeft, 10);
      const old = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, recoveryCode: codes[1] });
      assert.equal(old.status, 401, 'an old, never-used code died with the regeneration');
      const fresh2 = t.client();
      const viaNew = await fresh2.post('/v1/login/mfa', { mfaToken: (await passwordStep(fresh2, email, password)).mfaToken, recoveryCode: newCodes[3] });
      assert.equal(viaNew.status, 200);
      assert.equal((await fresh2.get('/v1/me/mfa')).body.recoveryCodesLeft, 9);
    });

    test('the mfaToken: single use, 5 minutes, three attempts, bound to its user', async () => {
      const { client, email, password } = await signUp(t, 'token');
      const { secret } = await enrollTOTP(t, client, password);

      // Single use.
      const first = await passwordStep(t.client(), email, password);
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: first.mfaToken, totp: totpNow(t, secret) })).status, 200);
      nextStep(t);
      const replayToken = await t.client().post('/v1/login/mfa', { mfaToken: first.mfaToken, totp: totpNow(t, secret) });
      assert.equal(replayToken.status, 401);
      assert.equal(replayToken.body.code, 'mfa_token_expired');

      // Five minutes.
      const late = await passwordStep(t.client(), email, password);
      t.clock.advance(5 * 60_000);
      const expired = await t.client().post('/v1/login/mfa', { mfaToken: late.mfaToken, totp: totpNow(t, secret) });
      assert.equal(expired.status, 401);
      assert.equal(expired.body.code, 'mfa_token_expired');
      const early = await passwordStep(t.client(), email, password);
      t.clock.advance(5 * 60_000 - 1);
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: early.mfaToken, totp: totpNow(t, secret) })).status, 200, 'valid up to 5 min');
      nextStep(t);

      // Three failed attempts and the token dies, even for the right code next.
      const guessed = await passwordStep(t.client(), email, password);
      for (let i = 0; i < 3; i++) {
        const bad = await t.client().post('/v1/login/mfa', { mfaToken: guessed.mfaToken, recoveryCode: '0000-0000-0000-0000-0000-0000' });
        assert.equal(bad.body.code, 'invalid_mfa');
      }
      const dead = await t.client().post('/v1/login/mfa', { mfaToken: guessed.mfaToken, totp: totpNow(t, secret) });
      assert.equal(dead.status, 401);
      assert.equal(dead.body.code, 'mfa_token_expired');
      // Reset the user's failure count with a success.
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, totp: totpNow(t, secret) })).status, 200);
      nextStep(t);

      // Unknown tokens and malformed bodies.
      const unknown = await t.client().post('/v1/login/mfa', { mfaToken: 'A'.repeat(43), totp: '123456' });
      assert.equal(unknown.status, 401);
      assert.equal(unknown.body.code, 'mfa_token_expired');
      // Any string is a token that matches nothing (API.md: 401 mfa_token_expired), not a malformed body.
      for (const mfaToken of ['bogus', 'not a token at all!', 'x'.repeat(256)]) {
        const garbage = await t.client().post('/v1/login/mfa', { mfaToken, totp: '123456' });
        assert.equal(garbage.status, 401, mfaToken);
        assert.equal(garbage.body.code, 'mfa_token_expired');
        assert.equal((await t.client().post('/v1/login/webauthn/options', { mfaToken })).body.code, 'mfa_token_expired');
      }
      assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: 'x'.repeat(257), totp: '123456' })).status, 400, 'still bounded');
      const step = await passwordStep(t.client(), email, password);
      for (const body of [
        { mfaToken: step.mfaToken },
        { mfaToken: step.mfaToken, totp: '123456', recoveryCode: 'x' },
        { mfaToken: step.mfaToken, totp: '12345a' },
        { mfaToken: step.mfaToken, totp: 123456 },
        { mfaToken: step.mfaToken, totp: '123456', extra: 1 },
      ]) {
        const response = await t.client().post('/v1/login/mfa', body);
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(response.body.code, 'invalid_request');
      }
    });

    test('step-up with a TOTP code: works once per code', async () => {
      const { client, password } = await signUp(t, 'reauth');
      const { secret } = await enrollTOTP(t, client, password);
      const code = totpNow(t, secret);
      assert.equal((await client.post('/v1/me/reauth', { totp: code })).status, 204);
      const replay = await client.post('/v1/me/reauth', { totp: code });
      assert.equal(replay.status, 401);
      assert.equal(replay.body.code, 'invalid_mfa');
      nextStep(t);
      assert.equal((await client.post('/v1/me/reauth', { totp: totpNow(t, secret) })).status, 204);
    });
  });
}
