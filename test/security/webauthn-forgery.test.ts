/**
 * Threat: forged or relayed WebAuthn ceremonies.
 *
 * Attacks: a phishing site relays the ceremony from its own origin; a stolen
 * credential id is used with another key; an assertion made for one login (or
 * one relying party) is replayed in another; an authenticator is used without
 * user verification (a stolen, unlocked key); a registration is completed for a
 * challenge this session never received. Every one must fail: we pin the
 * origin and RP ID from PUBLIC_URL, require UV, and consume challenges bound to
 * the session or the mfaToken that asked for them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { passwordStep, stepUp } from '../helpers/mfa.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';

describe('WebAuthn forgery', () => {
  let t: TestServer;
  let user: Awaited<ReturnType<typeof signUp>>;
  let key: SoftwareAuthenticator;
  let origin: string;

  async function loginOptions() {
    const { mfaToken } = await passwordStep(t.client(), user.email, user.password);
    const options = (await t.client().post('/v1/login/webauthn/options', { mfaToken })).body;
    return { mfaToken, options };
  }

  async function expectRefused(mfaToken: string, webauthn: unknown, label: string) {
    const response = await t.client().post('/v1/login/mfa', { mfaToken, webauthn });
    assert.equal(response.status, 401, label);
    assert.equal(response.body.code, 'invalid_mfa', label);
  }

  before(async () => {
    t = await startTestServer();
    origin = t.server.services.publicUrl;
    user = await signUp(t, 'forgery');
    await stepUp(user.client, user.password);
    key = new SoftwareAuthenticator(origin);
    const options = (await user.client.post('/v1/me/mfa/webauthn/options')).body;
    assert.equal((await user.client.post('/v1/me/mfa/webauthn', { name: 'key', response: key.register(options) })).status, 201);
  });
  after(async () => {
    await t.close();
  });

  test('registration: another origin, no UV, another RP ID, a challenge never issued to this session', async () => {
    const cases: Array<[string, (options: any) => unknown]> = [
      ['phishing origin', (o) => new SoftwareAuthenticator('https://rampart.evil.example').register(o)],
      ['no user verification', (o) => new SoftwareAuthenticator(origin).register(o, { userVerified: false })],
      ['another RP ID', (o) => new SoftwareAuthenticator(origin).register(o, { rpId: 'evil.example' })],
      ['made-up challenge', (o) => new SoftwareAuthenticator(origin).register(o, { challenge: Buffer.alloc(32, 7).toString('base64url') })],
    ];
    for (const [label, forge] of cases) {
      await stepUp(user.client, user.password);
      const options = (await user.client.post('/v1/me/mfa/webauthn/options')).body;
      const response = await user.client.post('/v1/me/mfa/webauthn', { name: label, response: forge(options) });
      assert.equal(response.status, 400, label);
      assert.equal(response.body.code, 'webauthn_registration_failed', label);
    }
    // A registration challenge expires after 5 minutes.
    await stepUp(user.client, user.password);
    const slow = (await user.client.post('/v1/me/mfa/webauthn/options')).body;
    t.clock.advance(5 * 60_000);
    const late = await user.client.post('/v1/me/mfa/webauthn', { name: 'late', response: new SoftwareAuthenticator(origin).register(slow) });
    assert.equal(late.status, 400, 'expired challenge');
    // Another session's challenge does not register here.
    const other = await signUp(t, 'other');
    await stepUp(other.client, other.password);
    const theirs = (await other.client.post('/v1/me/mfa/webauthn/options')).body;
    const stolen = await user.client.post('/v1/me/mfa/webauthn', { name: 'stolen', response: new SoftwareAuthenticator(origin).register(theirs) });
    assert.equal(stolen.status, 400);
    assert.equal((await user.client.get('/v1/me/mfa')).body.webauthn.length, 1, 'nothing was registered');
  });

  test('assertion: phishing origin, no UV, wrong key, tampered signature, foreign challenge, expired token', async () => {
    let attempt = await loginOptions();
    await expectRefused(attempt.mfaToken, key.assert(attempt.options, { origin: 'https://rampart.evil.example' }), 'phishing origin');
    attempt = await loginOptions();
    await expectRefused(attempt.mfaToken, key.assert(attempt.options, { userVerified: false }), 'no UV');
    attempt = await loginOptions();
    await expectRefused(attempt.mfaToken, new SoftwareAuthenticator(origin, { credentialId: key.credentialId }).assert(attempt.options, { counter: 100 }), 'same id, another key');
    attempt = await loginOptions();
    const tampered = key.assert(attempt.options);
    const signature = Buffer.from(tampered.response.signature, 'base64url');
    signature[signature.length - 1]! ^= 1;
    tampered.response.signature = signature.toString('base64url');
    await expectRefused(attempt.mfaToken, tampered, 'tampered signature');

    // A challenge issued to another login token.
    const a = await loginOptions();
    const b = await loginOptions();
    await expectRefused(a.mfaToken, key.assert(b.options), 'challenge of another token');

    // A login challenge never outlives its mfaToken (5 minutes).
    const slow = await passwordStep(t.client(), user.email, user.password);
    t.clock.advance(60_000);
    const slowOptions = (await t.client().post('/v1/login/webauthn/options', { mfaToken: slow.mfaToken })).body;
    t.clock.advance(4 * 60_000);
    const expired = await t.client().post('/v1/login/mfa', { mfaToken: slow.mfaToken, webauthn: key.assert(slowOptions) });
    assert.equal(expired.status, 401);
    assert.equal(expired.body.code, 'mfa_token_expired');

    // The five failures above locked further factor attempts for a minute (mfa-brute-force.test.ts);
    // five minutes later, the genuine key works (its counter only grew).
    const ok = await loginOptions();
    const success = await t.client().post('/v1/login/mfa', { mfaToken: ok.mfaToken, webauthn: key.assert(ok.options) });
    assert.equal(success.status, 200);
  });

  test('WebAuthn options need a live mfaToken', async () => {
    const options = await t.client().post('/v1/login/webauthn/options', { mfaToken: 'B'.repeat(43) });
    assert.equal(options.status, 401);
    assert.equal(options.body.code, 'mfa_token_expired');
  });
});
