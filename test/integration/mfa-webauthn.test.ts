import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SecurityEvent } from '../../src/events/security-events.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { passwordStep, stepUp } from '../helpers/mfa.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`WebAuthn with a software authenticator (${store})`, () => {
    let t: TestServer;
    const events: SecurityEvent[] = [];
    before(async () => {
      t = await startTestServer({ store });
      t.server.services.events.addSink({ record: (event) => void events.push(event) });
    });
    after(async () => {
      await t.close();
    });

    test('register two named credentials, log in with one, counters checked, remove them', async () => {
      const { client, email, password, userId } = await signUp(t, 'webauthn');
      const origin = t.server.services.publicUrl;
      assert.match(origin, /^https:\/\/localhost:\d+$/);

      const early = await client.post('/v1/me/mfa/webauthn/options');
      assert.equal(early.status, 403);
      assert.equal(early.body.code, 'reauth_required');
      await stepUp(client, password);
      const options = (await client.post('/v1/me/mfa/webauthn/options')).body;
      assert.equal(options.rp.id, 'localhost', 'RP ID = host name of PUBLIC_URL');
      assert.equal(options.rp.name, 'Rampart');
      assert.equal(Buffer.from(options.user.id, 'base64url').toString(), userId, 'the user handle is our opaque id, no personal data');
      assert.equal(options.user.name, email);
      assert.equal(options.authenticatorSelection.userVerification, 'required');
      assert.equal(options.attestation, 'none');
      assert.ok(Buffer.from(options.challenge, 'base64url').length >= 16, 'challenge ≥ 128 bits (ASVS V6.7.2)');
      assert.deepEqual(options.excludeCredentials, []);

      const keyA = new SoftwareAuthenticator(origin);
      const cookieBefore = client.cookies.get(SESSION_COOKIE);
      const registered = await client.post('/v1/me/mfa/webauthn', { name: 'YubiKey 5', response: keyA.register(options) });
      assert.equal(registered.status, 201);
      assert.match(registered.body.id, /^wac_/);
      assert.equal(registered.body.name, 'YubiKey 5');
      assert.notEqual(client.cookies.get(SESSION_COOKIE), cookieBefore, 'upgraded session, new secret');
      assert.equal((await client.get('/v1/session')).body.session.mfaVerified, true);

      // The challenge was single use.
      const again = await client.post('/v1/me/mfa/webauthn', { name: 'Copy', response: new SoftwareAuthenticator(origin).register(options) });
      assert.equal(again.status, 400);
      assert.equal(again.body.code, 'webauthn_registration_failed');

      const options2 = (await client.post('/v1/me/mfa/webauthn/options')).body;
      assert.deepEqual(options2.excludeCredentials.map((c: { id: string }) => c.id), [keyA.id]);
      const keyB = new SoftwareAuthenticator(origin);
      assert.equal((await client.post('/v1/me/mfa/webauthn', { name: 'Laptop', response: keyB.register(options2) })).status, 201);
      const listed = (await client.get('/v1/me/mfa')).body;
      assert.equal(listed.totp, false);
      assert.deepEqual(listed.webauthn.map((c: { name: string }) => c.name), ['YubiKey 5', 'Laptop']);
      assert.equal((await client.get('/v1/session')).body.user.mfaEnabled, true);

      // Login: the password, then an assertion over the token's challenge.
      const browser = t.client();
      const step = await passwordStep(browser, email, password);
      assert.deepEqual(step.methods, ['webauthn']);
      const request = await browser.post('/v1/login/webauthn/options', { mfaToken: step.mfaToken });
      assert.equal(request.status, 200);
      assert.equal(request.body.rpId, 'localhost');
      assert.equal(request.body.userVerification, 'required');
      assert.deepEqual(request.body.allowCredentials.map((c: { id: string }) => c.id).sort(), [keyA.id, keyB.id].sort());
      const assertion = keyB.assert(request.body);
      const done = await browser.post('/v1/login/mfa', { mfaToken: step.mfaToken, webauthn: assertion });
      assert.equal(done.status, 200);
      assert.equal(done.body.session.mfaVerified, true);
      const db = t.server.services.stores.main.db;
      assert.equal((await db.selectFrom('sessions').select('mfa_method').where('public_id', '=', done.body.session.id).executeTakeFirstOrThrow()).mfa_method, 'webauthn');
      assert.equal((await db.selectFrom('mfa_webauthn_credentials').select('counter').where('credential_id', '=', keyB.id).executeTakeFirstOrThrow()).counter, 1);

      // The same assertion again: its challenge is spent.
      const replayStep = await passwordStep(t.client(), email, password);
      await t.client().post('/v1/login/webauthn/options', { mfaToken: replayStep.mfaToken });
      const replay = await t.client().post('/v1/login/mfa', { mfaToken: replayStep.mfaToken, webauthn: assertion });
      assert.equal(replay.status, 401);
      assert.equal(replay.body.code, 'invalid_mfa');

      // A counter that does not grow betrays a clone (WebAuthn §6.1.1).
      const cloneStep = await passwordStep(t.client(), email, password);
      const cloneOptions = (await t.client().post('/v1/login/webauthn/options', { mfaToken: cloneStep.mfaToken })).body;
      const cloned = await t.client().post('/v1/login/mfa', { mfaToken: cloneStep.mfaToken, webauthn: keyB.assert(cloneOptions, { counter: 1 }) });
      assert.equal(cloned.status, 401);
      assert.ok(events.some((e) => e.action === 'mfa.failed' && e.details?.['reason'] === 'counter_regression' && e.details?.['method'] === 'webauthn'), 'recorded with its factor (ASVS V16.3.1)');

      // Removal: step-up, scoped to the owner, other sessions end.
      const other = await signUp(t, 'intruder');
      await stepUp(other.client, other.password);
      assert.equal((await other.client.delete(`/v1/me/mfa/webauthn/${registered.body.id}`)).status, 404, 'another user\'s credential is not found');
      t.clock.advance(10 * 60_000);
      const stale = await client.delete(`/v1/me/mfa/webauthn/${registered.body.id}`);
      assert.equal(stale.status, 403);
      assert.equal(stale.body.code, 'reauth_required');
      await stepUp(client, password);
      assert.equal((await client.delete(`/v1/me/mfa/webauthn/${registered.body.id}`)).status, 204);
      assert.equal((await browser.get('/v1/session')).status, 401, 'other sessions end when a factor is removed (ASVS V7.4.3)');
      assert.equal((await client.get('/v1/session')).status, 200, 'the current one stays');
      assert.equal((await client.get('/v1/me/mfa')).body.webauthn.length, 1);
      const last = (await client.get('/v1/me/mfa')).body.webauthn[0].id;
      assert.equal((await client.delete(`/v1/me/mfa/webauthn/${last}`)).status, 204);
      assert.equal((await client.get('/v1/session')).body.user.mfaEnabled, false);
      const plain = await t.client().post('/v1/login', { email, password });
      assert.equal(plain.body.mfaRequired, undefined, 'no factor left: a password login again');
      assert.ok(plain.body.session);
    });
  });
}
