/**
 * Threat: account enumeration through signup (ASVS V6.3.8). The HTTP contract answers a
 * signup for an address that has an account with `409 email_taken`, so a client can test
 * addresses by trying to sign them up. Defence: each client address gets
 * SIGNUP_EMAIL_TAKEN_PER_HOUR such answers an hour; past that every signup from it answers
 * 429, whatever it asks about (a refusal only for taken addresses would be the same oracle).
 * A point is counted when the signup arrives and given back unless the answer is
 * `email_taken`, so parallel probes cannot all slip past a check made first, and ordinary
 * signups from a busy office address cost nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';

const BUDGET = 3;

describe('signup cannot be used to test addresses in bulk', () => {
  let t: TestServer;
  const taken: string[] = [];
  before(async () => {
    t = await startTestServer({ env: { SIGNUP_EMAIL_TAKEN_PER_HOUR: String(BUDGET), TRUSTED_PROXIES: '127.0.0.1/32' } });
    for (let i = 0; i < 8; i++) taken.push((await signUp(t, `enum-${i}`)).email);
  });
  after(() => t.close());

  let nextAddress = 10;
  const newAddress = () => ({ headers: { 'x-forwarded-for': `203.0.113.${nextAddress++}` } });
  const signup = (email: string, from: { headers: Record<string, string> }, password = strongPassword()) =>
    t.client().post('/v1/signup', { email, password, name: 'Probe' }, from);

  test('after 3 email_taken answers an address gets 429 for every signup, taken or not, for the hour', async () => {
    const probe = newAddress();
    for (const email of taken.slice(0, BUDGET)) {
      const response = await signup(email, probe);
      assert.equal(response.status, 409);
      assert.equal(response.body.code, 'email_taken');
    }
    const refused = await signup(taken[BUDGET]!, probe);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.body.code, 'rate_limited');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter > 60 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
    assert.equal(refused.headers['ratelimit-policy'], `${BUDGET};w=3600`);
    // An unknown address gets the same answer: the refusal says nothing of the address.
    const fresh = uniqueEmail('enum-fresh');
    const unknown = await signup(fresh, probe);
    assert.equal(unknown.status, 429);
    assert.deepEqual({ ...unknown.body, instance: undefined }, { ...refused.body, instance: undefined });
    assert.equal(await t.server.services.pii.findUserIdByEmail(fresh), null, 'no account was made');
    // Another address is not affected.
    assert.equal((await signup(fresh, newAddress())).status, 201);
  });

  test('signups that do not answer email_taken give their point back: a busy address signs up many accounts', async () => {
    const office = newAddress();
    for (let i = 0; i < BUDGET * 2; i++) assert.equal((await signup(uniqueEmail('enum-office'), office)).status, 201);
    // Weak passwords are refused before the address is looked at: they cost nothing either.
    for (let i = 0; i < BUDGET * 2; i++) assert.equal((await signup(uniqueEmail('enum-weak'), office, 'password1234')).status, 400);
    assert.equal((await signup(taken[0]!, office)).status, 409, 'the whole budget is still there');
  });

  test('parallel probes from one address get at most the budget of email_taken answers', async () => {
    const burst = newAddress();
    const answers = await Promise.all(taken.map((email) => signup(email, burst)));
    const statuses = answers.map((response) => response.status);
    assert.ok(statuses.filter((status) => status === 409).length <= BUDGET, statuses.join(','));
    assert.ok(statuses.every((status) => status === 409 || status === 429), statuses.join(','));
    assert.equal(statuses.filter((status) => status === 429).length, taken.length - BUDGET, statuses.join(','));
  });
});
