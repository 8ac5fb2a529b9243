/**
 * Threat: double spending a single-use recovery code (ASVS V2.3.4, V6.5.1).
 *
 * Attack: an attacker holding one recovery code (a printout, a photo) fires
 * many redemptions at once, hoping that several read "unused" before any
 * writes "used", to get several sessions — or to keep a session after the
 * owner used the code. Redemption is one conditional UPDATE (`used_at IS
 * NULL`) whose row count decides: exactly one request wins, on SQLite and on
 * PostgreSQL alike.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, passwordStep } from '../helpers/mfa.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`recovery code double spend (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('20 parallel logins with one recovery code: exactly one succeeds', async () => {
      const { client, email, password } = await signUp(t, 'race');
      const { recoveryCodes } = await enrollTOTP(t, client, password);
      const tokens: string[] = [];
      for (let i = 0; i < 20; i++) tokens.push((await passwordStep(t.client(), email, password)).mfaToken);
      const responses = await Promise.all(tokens.map((mfaToken) => t.client().post('/v1/login/mfa', { mfaToken, recoveryCode: recoveryCodes[0] })));
      assert.equal(responses.filter((r) => r.status === 200).length, 1);
      assert.ok(responses.every((r) => r.status === 200 || r.status === 401 || r.status === 429));
      assert.equal((await client.get('/v1/me/mfa')).body.recoveryCodesLeft, 9);
    });

    test('20 parallel redemptions of one code in the service: exactly one is accepted', async () => {
      const { client, password, userId } = await signUp(t, 'race2');
      const { recoveryCodes } = await enrollTOTP(t, client, password);
      const results = await Promise.all(Array.from({ length: 20 }, () => t.server.services.mfa.redeemRecoveryCode(userId, recoveryCodes[5]!)));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await t.server.services.mfa.redeemRecoveryCode(userId, recoveryCodes[5]!), false);
    });
  });
}
