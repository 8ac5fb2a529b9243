/**
 * Threat: a session token that outlives the authentication it was meant to be
 * replaced by (ASVS V7.2.4: "generates a new session token on user
 * authentication … and terminates the current session token").
 *
 * Attack: the browser already holds a session cookie when someone signs in
 * (a shared computer, a cookie planted or copied earlier). The sign-in sets a
 * new cookie, but the old one must stop working too: otherwise whoever kept a
 * copy of it still holds a live session, invisible in the browser that
 * replaced it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { enrollTOTP, passwordStep, totpNow } from '../helpers/mfa.js';

describe('a sign-in ends the session the browser already held', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  async function status(secret: string): Promise<number> {
    return (await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${secret}` } })).status;
  }

  function held(client: TestClient): string {
    const secret = client.cookies.get(SESSION_COOKIE);
    assert.ok(secret, 'the client holds a session');
    return secret;
  }

  test('a password login: new cookie, and the old one is refused', async () => {
    const { client, email, password, userId } = await signUp(t, 'relogin');
    const old = held(client);
    const oldPublicId = (await client.get('/v1/session')).body.session.id;
    const login = await client.post('/v1/login', { email, password });
    assert.equal(login.status, 200);
    assert.notEqual(held(client), old);
    assert.equal(await status(old), 401, 'the replaced session is dead');
    assert.equal(await status(held(client)), 200);
    const { events } = await t.server.services.audit.latest({ userId, limit: 20 });
    assert.ok(events.some((e) => e.action === 'session.revoked' && e.target?.id === oldPublicId && e.details['reason'] === 'replaced'), 'the end is audited');
  });

  test('another user signing in (or up) in the same browser ends the first user\'s session', async () => {
    const first = await signUp(t, 'first');
    const old = held(first.client);
    const other = await signUp(t, 'second');
    assert.equal((await first.client.post('/v1/login', { email: other.email, password: other.password })).status, 200);
    assert.equal(await status(old), 401);

    const again = held(first.client);
    assert.equal((await first.client.post('/v1/signup', { email: uniqueEmail('third'), password: strongPassword() })).status, 201);
    assert.equal(await status(again), 401, 'a signup replaces the session too');
  });

  test('the second step of an MFA login ends it too; the first step alone changes nothing', async () => {
    const { client, email, password } = await signUp(t, 'mfa');
    const { secret } = await enrollTOTP(t, client, password);
    const old = held(client);
    const { mfaToken } = await passwordStep(client, email, password);
    assert.equal(await status(old), 200, 'a half-done login ends nothing');
    assert.equal((await client.post('/v1/login/mfa', { mfaToken, totp: totpNow(t, secret) })).status, 200);
    assert.equal(await status(old), 401);
  });

  test('a failed login ends nothing; a cookie that names no session is ignored', async () => {
    const { client, email } = await signUp(t, 'failed');
    const old = held(client);
    assert.equal((await client.post('/v1/login', { email, password: strongPassword() })).status, 401);
    assert.equal(await status(old), 200);

    const stranger = await signUp(t, 'stranger');
    const forged = t.client();
    const login = await forged.post('/v1/login', { email: stranger.email, password: stranger.password }, { headers: { cookie: `${SESSION_COOKIE}=${'A'.repeat(43)}` } });
    assert.equal(login.status, 200);
  });
});
