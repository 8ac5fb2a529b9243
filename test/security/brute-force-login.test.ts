/**
 * Threat: online password guessing against one account.
 *  - From one address: an attacker retries forever. Each failure past a few makes
 *    that address wait twice as long, and during the wait even the right password
 *    is refused (the password is not checked at all).
 *  - From many addresses (a botnet, simulated through a trusted proxy's
 *    X-Forwarded-For): each address stays under the per-address limit, so the
 *    account itself counts failures and makes every address it has never logged
 *    in from wait, and an alert goes out.
 *  - Against the owner: whatever the attacker does, the owner logs in from an
 *    address they used before; a success there resets that address only.
 *  - Against privacy: an unknown email backs off exactly like a real account.
 *  - With a stolen session: step-up and password change check the password too,
 *    so they count in the same back-off as the login (ASVS V6.3.1, V6.3.4).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';

const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });

describe('login brute-force defence', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      env: { TRUSTED_PROXIES: '127.0.0.1/32', LOGIN_BACKOFF_AFTER_FAILURES: '3', LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '6', LOGIN_BACKOFF_MAX_SECONDS: '60' },
    });
  });
  after(async () => {
    await t.close();
  });

  async function login(email: string, password: string, address: string) {
    return t.client().post('/v1/login', { email, password }, from(address));
  }

  test('one address: exponential back-off that refuses even the right password; the owner logs in from elsewhere', async () => {
    const { email, password } = await signUp(t, 'victim');
    assert.equal((await login(email, password, '198.51.100.7')).status, 200, 'the owner\'s usual address');
    const attacker = '203.0.113.5';
    for (let i = 0; i < 3; i++) assert.equal((await login(email, strongPassword(), attacker)).status, 401);
    const waiting = await login(email, password, attacker);
    assert.equal(waiting.status, 429, 'the right password is refused while the address waits');
    assert.equal(waiting.body.code, 'rate_limited');
    assert.equal(waiting.headers['retry-after'], '1');
    for (const expected of ['2', '4']) {
      t.clock.advance(Number(waiting.headers['retry-after'] ?? 0) * 1000);
      const retried = await login(email, strongPassword(), attacker);
      assert.equal(retried.status, 401);
      const next = await login(email, strongPassword(), attacker);
      assert.equal(next.status, 429);
      assert.equal(next.headers['retry-after'], expected, 'each failure doubles the wait');
      waiting.headers['retry-after'] = expected;
    }
    // Five failures, under the account's six: the owner is locked out neither from their usual address nor from a new one.
    assert.equal((await login(email, password, '198.51.100.7')).status, 200);
    assert.equal((await login(email, password, '192.0.2.44')).status, 200);
    assert.equal((await login(email, password, attacker)).status, 429, 'the attacker\'s address still waits');
  });

  test('a success resets its address\'s streak even right after an earlier success (no write is skipped that has a failure to clear)', async () => {
    const { email, password } = await signUp(t, 'streak');
    const address = '198.51.100.9';
    assert.equal((await login(email, password, address)).status, 200);
    for (let round = 0; round < 3; round++) {
      // Two failures, under the pair's three, then the owner gets it right: the streak starts again.
      for (let i = 0; i < 2; i++) assert.equal((await login(email, strongPassword(), address)).status, 401);
      assert.equal((await login(email, password, address)).status, 200, `round ${round}: the earlier failures were reset`);
    }
  });

  test('guessing spread over many addresses hits the account limit and raises one alert; known addresses keep working', async () => {
    const victim = await signUp(t, 'botnet');
    const known = '198.51.100.8';
    assert.equal((await login(victim.email, victim.password, known)).status, 200);
    for (let n = 10; n < 16; n++) {
      assert.equal((await login(victim.email, strongPassword(), `203.0.113.${n}`)).status, 401, `one guess from address ${n}`);
    }
    const fresh = await login(victim.email, victim.password, '203.0.113.99');
    assert.equal(fresh.status, 429, 'a new address waits, right password or not');
    assert.equal(fresh.headers['retry-after'], '1');
    assert.equal((await login(victim.email, victim.password, known)).status, 200, 'the owner\'s known address is exempt');
    assert.equal((await login(victim.email, victim.password, '203.0.113.98')).status, 429, 'a success resets its own address only');

    const { events } = await t.server.services.audit.latest({ userId: victim.userId, limit: 100 });
    const alerts = events.filter((e) => e.action === 'alert.raised' && e.details['rule'] === 'brute_force');
    assert.equal(alerts.length, 1, 'one alert when the threshold is crossed');
    assert.ok(events.filter((e) => e.action === 'login.throttled').length >= 2);
    const lockouts = await t.server.services.metrics.registry.getSingleMetricAsString('rampart_login_lockouts_total');
    assert.match(lockouts, /scope="account"\} [1-9]/);

    t.clock.advance(2000);
    assert.equal((await login(victim.email, victim.password, '203.0.113.97')).status, 200, 'the wait ends');
  });

  test('an unknown email backs off exactly like an account (no enumeration)', async () => {
    const real = await signUp(t, 'twin');
    const ghost = uniqueEmail('ghost');
    const answers = [];
    for (const email of [real.email, ghost]) {
      for (let i = 0; i < 3; i++) assert.equal((await login(email, strongPassword(), '203.0.113.200')).status, 401);
      answers.push(await login(email, strongPassword(), '203.0.113.200'));
    }
    assert.equal(answers[0]!.status, 429);
    assert.equal(answers[1]!.status, 429);
    assert.deepEqual(answers[1]!.body, answers[0]!.body);
    assert.equal(answers[1]!.headers['retry-after'], answers[0]!.headers['retry-after']);
  });

  /** Another client holding a copy of `victim`'s session cookie and CSRF token. */
  function stolen(victim: TestClient): TestClient {
    const thief = t.client();
    for (const [name, value] of victim.cookies) thief.cookies.set(name, value);
    thief.csrfToken = victim.csrfToken;
    return thief;
  }

  test('a stolen session cannot guess the password at step-up: the login\'s back-off holds there, and they share its counters', async () => {
    const { client, email, password } = await signUp(t, 'stepup');
    const thief = stolen(client);
    const attacker = '203.0.113.60';
    for (let i = 0; i < 3; i++) assert.equal((await thief.post('/v1/me/reauth', { password: strongPassword() }, from(attacker))).status, 401);
    const waiting = await thief.post('/v1/me/reauth', { password }, from(attacker));
    assert.equal(waiting.status, 429, 'the right password is refused while the address waits');
    assert.equal(waiting.body.code, 'rate_limited');
    assert.equal(waiting.headers['retry-after'], '1');
    assert.equal((await login(email, password, attacker)).status, 429, 'the login from that address waits too: one streak');
    assert.equal((await client.post('/v1/me/reauth', { password }, from('198.51.100.60'))).status, 204, 'the owner elsewhere is not locked out');
  });

  test('a stolen session cannot guess the password through the password change either', async () => {
    const { client, email, password } = await signUp(t, 'change');
    const thief = stolen(client);
    const attacker = '203.0.113.61';
    for (let i = 0; i < 3; i++) {
      const wrong = await thief.post('/v1/me/password', { currentPassword: strongPassword(), newPassword: strongPassword() }, from(attacker));
      assert.equal(wrong.status, 401);
    }
    const waiting = await thief.post('/v1/me/password', { currentPassword: password, newPassword: strongPassword() }, from(attacker));
    assert.equal(waiting.status, 429, 'the right current password is refused while the address waits');
    assert.equal(waiting.body.code, 'rate_limited');
    assert.equal((await login(email, password, '198.51.100.61')).status, 200, 'the password did not change');
  });
});
