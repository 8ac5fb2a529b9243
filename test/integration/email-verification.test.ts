import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.js';
import { VERIFICATION_TOKEN_TTL_MS } from '../../src/auth/flows/email-verification.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, strongPassword, type StoreKind, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { createOrgWithRoles, createToken, invitationTokenFor } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';

/** Every verification token mailed to `email`, oldest first. */
function verificationTokensFor(t: TestServer, email: string): string[] {
  return readOutbox(t.dataDir).filter((mail) => mail.to === email)
    .flatMap((mail) => [...mail.body.matchAll(/\/verify-email\?token=([A-Za-z0-9_-]+)/g)].map((match) => match[1]!));
}

/** Asks for a link over HTTP and returns the one new token mailed. */
async function requestLink(t: TestServer, user: { client: TestClient; email: string }): Promise<string> {
  const known = new Set(verificationTokensFor(t, user.email));
  const response = await user.client.post('/v1/me/email/verification');
  assert.equal(response.status, 202, response.text);
  const fresh = verificationTokensFor(t, user.email).filter((token) => !known.has(token));
  assert.equal(fresh.length, 1, 'one new verification mail');
  return fresh[0]!;
}

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`email verification on ${store}`, () => {
    let t: TestServer;
    const open = new Resources();
    before(async () => {
      t = open.add(await startTestServer({ store }), (server) => server.close());
    });
    after(() => open.close());

    const verified = async (client: TestClient) => (await client.get('/v1/session')).body.user.emailVerified as boolean;
    const eventsFor = async (userId: string, action: string) =>
      (await t.server.services.audit.latest({ limit: 300 })).events.filter((event) => event.action === action && event.target?.id === userId);

    test('a signed-in user asks for a link; opening it verifies the address once; the link is single use and stored hashed', async () => {
      const alice = await signUp(t, 'verify-alice');
      assert.equal(await verified(alice.client), false, 'a new account is unverified');
      assert.equal(verificationTokensFor(t, alice.email).length, 0, 'signup itself mails nothing');

      const withoutCsrf = await alice.client.post('/v1/me/email/verification', undefined, { headers: { 'x-csrf-token': 'wrong' } });
      assert.equal(withoutCsrf.status, 403);
      assert.equal(withoutCsrf.body.code, 'csrf_failed');

      const token = await requestLink(t, alice);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
      const mail = readOutbox(t.dataDir).find((m) => m.to === alice.email && m.body.includes(token))!;
      assert.ok(mail.body.includes(`${t.server.services.publicUrl}/verify-email?token=${token}`), 'the link is under PUBLIC_URL');
      const stored = await t.server.services.stores.main.db.selectFrom('password_tokens').select(['token_hash', 'purpose', 'expires_at', 'created_at'])
        .where('user_id', '=', alice.userId).execute();
      assert.deepEqual(stored.map((row) => [row.token_hash, row.purpose]), [[sha256Hex(token), 'verify_email']], 'only the hash is stored');
      assert.equal(Number(stored[0]!.expires_at) - Number(stored[0]!.created_at), VERIFICATION_TOKEN_TTL_MS);

      // A link is good for its own purpose only: a verification link resets no password.
      const asReset = await t.client().post('/v1/password/reset', { token, password: strongPassword() });
      assert.equal(asReset.status, 400);
      assert.equal(asReset.body.code, 'invalid_token');
      const opened = await t.client().post('/v1/email/verify', { token });
      assert.equal(opened.status, 200, opened.text);
      assert.equal(opened.body.user.id, alice.userId);
      assert.equal(opened.body.user.emailVerified, true);
      assert.equal(opened.body.user.email, alice.email);
      assert.equal(await verified(alice.client), true, 'the running session sees it at once');

      const again = await t.client().post('/v1/email/verify', { token });
      assert.equal(again.status, 400);
      assert.equal(again.body.code, 'invalid_token');
      const more = await alice.client.post('/v1/me/email/verification');
      assert.equal(more.status, 409);
      assert.equal(more.body.code, 'already_verified');
      assert.deepEqual((await eventsFor(alice.userId, 'email.verified')).map((event) => event.details), [{ via: 'link' }]);
      assert.equal((await eventsFor(alice.userId, 'email.verification_sent')).length, 1);
    });

    test('a locked account cannot redeem its verification link', async () => {
      const gina = await signUp(t, 'verify-gina');
      const token = await requestLink(t, gina);
      await t.server.services.accounts.lock(gina.userId, { type: 'system', id: null }, null, 'test');
      const refused = await t.client().post('/v1/email/verify', { token });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.code, 'invalid_token');
      const row = await t.server.services.stores.main.db.selectFrom('users').select('email_verified').where('id', '=', gina.userId).executeTakeFirstOrThrow();
      assert.equal(Number(row.email_verified), 0, 'nothing marked');
    });

    test('a newer link voids the older; a link expires after 24 hours; garbage is invalid_token, never a 500', async () => {
      const bob = await signUp(t, 'verify-bob');
      const first = await requestLink(t, bob);
      const second = await requestLink(t, bob);
      const voided = await t.client().post('/v1/email/verify', { token: first });
      assert.equal(voided.status, 400);
      assert.equal(voided.body.code, 'invalid_token');
      t.clock.advance(VERIFICATION_TOKEN_TTL_MS + 1_000);
      const expired = await t.client().post('/v1/email/verify', { token: second });
      assert.equal(expired.status, 400);
      assert.equal(expired.body.code, 'invalid_token');
      const row = await t.server.services.stores.main.db.selectFrom('users').select('email_verified').where('id', '=', bob.userId).executeTakeFirstOrThrow();
      assert.equal(Number(row.email_verified), 0);
      for (const body of [{ token: '' }, { token: 'x'.repeat(257) }, { token: 42 }, {}, { token: 'abc', extra: 1 }]) {
        const refused = await t.client().post('/v1/email/verify', body);
        assert.equal(refused.status, 400, JSON.stringify(body));
        assert.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8');
      }
      assert.equal((await t.client().post('/v1/email/verify', { token: 'not-a-real-token' })).body.code, 'invalid_token');
      assert.ok((await t.server.services.audit.latest({ limit: 50 })).events.some((event) => event.action === 'email.verification_failed'));
    });

    test('mails are budgeted per account and hour; only a session asks (no API token, no anonymous caller)', async () => {
      const carol = await signUp(t, 'verify-carol');
      let last = '';
      for (let i = 0; i < 5; i++) last = await requestLink(t, carol);
      const spent = await carol.client.post('/v1/me/email/verification');
      assert.equal(spent.status, 429);
      assert.equal(spent.body.code, 'rate_limited');
      assert.ok(Number(spent.headers['retry-after']) > 0);
      assert.equal(verificationTokensFor(t, carol.email).length, 5, 'nothing sent past the budget');
      assert.equal((await t.client().post('/v1/email/verify', { token: last })).status, 200, 'the last link stays valid');

      const dave = await signUp(t, 'verify-dave');
      const token = await createToken(dave, ['profile:read']);
      const viaToken = await t.client().post('/v1/me/email/verification', undefined, { headers: { authorization: `Bearer ${token}` }, noCookies: true });
      assert.equal(viaToken.status, 403, viaToken.text);
      const anonymous = await t.client().post('/v1/me/email/verification');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.code, 'unauthenticated');
      assert.equal(verificationTokensFor(t, dave.email).length, 0);
    });

    test('a completed password reset and an accepted invitation prove the address too (each a secret mailed to it)', async () => {
      const erin = await signUp(t, 'verify-erin');
      assert.equal((await t.client().post('/v1/password/forgot', { email: erin.email })).status, 202);
      await t.server.services.background.settled();
      const resetMail = readOutbox(t.dataDir).filter((mail) => mail.to === erin.email && /Reset your/.test(mail.subject)).at(-1)!;
      const asVerification = await t.client().post('/v1/email/verify', { token: resetTokenFrom(resetMail) });
      assert.equal(asVerification.body.code, 'invalid_token', 'and a reset link verifies nothing by itself');
      const newPassword = strongPassword();
      assert.equal((await t.client().post('/v1/password/reset', { token: resetTokenFrom(resetMail), password: newPassword })).status, 204);
      const login = t.client();
      const signedIn = await login.post('/v1/login', { email: erin.email, password: newPassword });
      assert.equal(signedIn.status, 200, signedIn.text);
      assert.equal(signedIn.body.user.emailVerified, true);
      assert.deepEqual((await eventsFor(erin.userId, 'email.verified')).map((event) => event.details), [{ via: 'password_reset' }]);

      const org = await createOrgWithRoles(t, 'verify');
      const frankEmail = uniqueEmail('verify-frank');
      const invited = await org.users.admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: frankEmail, role: 'member' });
      assert.equal(invited.status, 201, invited.text);
      const frank = t.client();
      const signup = await frank.post('/v1/signup', { email: frankEmail, password: strongPassword(), name: 'Frank' });
      assert.equal(signup.status, 201, signup.text);
      assert.equal(await verified(frank), false);
      const accepted = await frank.post('/v1/invitations/accept', { token: invitationTokenFor(t, frankEmail) });
      assert.equal(accepted.status, 200, accepted.text);
      assert.equal(await verified(frank), true);
      assert.deepEqual((await eventsFor(signup.body.user.id, 'email.verified')).map((event) => event.details), [{ via: 'invitation' }]);
    });
  });
}
