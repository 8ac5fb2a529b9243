/**
 * The periodic expiry sweep (src/monitoring/background.ts): expired MFA login
 * steps — one holding a new password's argon2id hash — and expired WebAuthn
 * challenges are deleted by the server's clock, even when no new MFA challenge
 * comes to sweep them on the way; live ones stay.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MFA_TOKEN_TTL_MS } from '../../src/auth/mfa/mfa-service.js';
import { WEBAUTHN_TIMEOUT_MS } from '../../src/auth/mfa/webauthn/relying-party.js';
import { sweepExpired } from '../../src/monitoring/background.js';
import { enrollTOTP, passwordStep, stepUp } from '../helpers/mfa.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`the expiry sweep (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    async function rowsOf(userId: string) {
      const db = t.server.services.stores.main.db;
      const steps = await db.selectFrom('mfa_login_tokens').select(['token_hash', 'pending_password_hash']).where('user_id', '=', userId).execute();
      const challenges = await db.selectFrom('mfa_webauthn_challenges').select('purpose').where('user_id', '=', userId).orderBy('purpose').execute();
      return { steps, challenges: challenges.map((row) => row.purpose) };
    }

    /** A user with TOTP and a security key, a login step with its WebAuthn challenge, and a pending registration challenge. */
    async function userWithPendingState(label: string) {
      const user = await signUp(t, label);
      await enrollTOTP(t, user.client, user.password);
      await stepUp(user.client, user.password);
      const key = new SoftwareAuthenticator(t.server.services.publicUrl);
      const registration = (await user.client.post('/v1/me/mfa/webauthn/options')).body;
      assert.equal((await user.client.post('/v1/me/mfa/webauthn', { name: 'key', response: key.register(registration) })).status, 201);
      const { mfaToken } = await passwordStep(t.client(), user.email, user.password);
      assert.equal((await t.client().post('/v1/login/webauthn/options', { mfaToken })).status, 200);
      assert.equal((await user.client.post('/v1/me/mfa/webauthn/options')).status, 200);
      // A step holding a new password, as an expired-password change leaves it until the factor is proved.
      const services = t.server.services;
      const row = (await services.users.findById(user.userId))!;
      const profile = (await services.pii.getProfile(user.userId))!;
      const held = await services.mfa.startLogin({
        user: row, profile, meta: { ip: '127.0.0.1', userAgent: null },
        pendingPassword: { hash: await services.hasher.hash('a-new-Password-held-on-the-step'), hold: async () => {} },
      });
      assert.equal(held.kind, 'challenge');
      const rows = await rowsOf(user.userId);
      assert.equal(rows.steps.length, 2);
      assert.match(rows.steps.find((step) => step.pending_password_hash !== null)!.pending_password_hash!, /^\$argon2id\$/);
      assert.deepEqual(rows.challenges, ['login', 'register']);
      return user;
    }

    test('expired MFA login steps (and the password hash one held) and WebAuthn challenges are swept; live ones stay', async () => {
      assert.equal(MFA_TOKEN_TTL_MS, WEBAUTHN_TIMEOUT_MS, 'the test moves the clock past both at once');
      const old = await userWithPendingState('sweep-old');
      t.clock.advance(MFA_TOKEN_TTL_MS - 60_000);
      const live = await userWithPendingState('sweep-live');
      assert.equal((await rowsOf(old.userId)).steps.length, 2, 'nothing of the first user has expired yet');

      t.clock.advance(60_000);
      const counts = await sweepExpired(t.server.services);
      assert.equal(counts['mfaLoginState'], 4, "the first user's two steps and two challenges");
      assert.deepEqual(await rowsOf(old.userId), { steps: [], challenges: [] });
      const kept = await rowsOf(live.userId);
      assert.equal(kept.steps.length, 2, 'live steps stay');
      assert.deepEqual(kept.challenges, ['login', 'register'], 'live challenges stay');

      t.clock.advance(MFA_TOKEN_TTL_MS);
      await sweepExpired(t.server.services);
      assert.deepEqual(await rowsOf(live.userId), { steps: [], challenges: [] });
    });

    test('sessions and reset tokens are swept too, and one failing sweep does not stop the others', async () => {
      const user = await signUp(t, 'sweep-sessions');
      await t.client().post('/v1/password/forgot', { email: user.email });
      await t.server.services.background.settled();
      const db = t.server.services.stores.main.db;
      const sessionsOf = async () => (await db.selectFrom('sessions').select('id_hash').where('user_id', '=', user.userId).execute()).length;
      const resetTokensOf = async () => (await db.selectFrom('password_tokens').select('token_hash').where('user_id', '=', user.userId).execute()).length;
      assert.equal(await sessionsOf(), 1);
      assert.equal(await resetTokensOf(), 1);
      t.clock.advance(400 * 86_400_000);
      const services = t.server.services;
      const original = services.sessions.sweepExpired;
      services.sessions.sweepExpired = async () => {
        throw new Error('session store unavailable');
      };
      try {
        const counts = await sweepExpired(services);
        assert.equal(counts['sessions'], undefined);
        assert.ok((counts['passwordTokens'] ?? 0) >= 1);
        assert.equal(await resetTokensOf(), 0);
        assert.ok(t.logs.some((line) => line.includes('sessions sweep failed')), 'the failure is logged');
      } finally {
        services.sessions.sweepExpired = original;
      }
      assert.ok(((await sweepExpired(services))['sessions'] ?? 0) >= 1);
      assert.equal(await sessionsOf(), 0);
    });
  });
}
