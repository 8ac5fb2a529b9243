/**
 * Threat: a guesser escapes the per-address limits by making each request look
 * as if it came from somewhere else.
 *  - Without TRUSTED_PROXIES, a client-written X-Forwarded-For (X-Real-IP, …) is
 *    not an address at all: rotating it per request changes nothing.
 *  - Behind a trusted proxy, the client can only prepend entries the proxy appends
 *    to: rotating those changes nothing either (the rightmost untrusted hop counts).
 *  - Behind a trusted proxy that passes on something that is not an IP address
 *    (`203.0.113.5:4711` from proxies that add the source port, or a client's value
 *    forwarded as is), each distinct string was a fresh rate-limit budget and a
 *    fresh login back-off, and was stored as the session's and the audit log's
 *    address. Such a request is refused before any counting.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';

const LIMIT = 4;

describe('X-Forwarded-For without a trusted proxy', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { RATE_LIMIT_ANON_PER_MINUTE: String(LIMIT) } });
  });
  after(async () => {
    await t.close();
  });

  test('rotating it (and X-Real-IP) per request does not escape the per-address limit', async () => {
    const email = uniqueEmail('rotated');
    const statuses: number[] = [];
    for (let n = 1; n <= LIMIT + 2; n++) {
      const spoof = { 'x-forwarded-for': `198.51.100.${n}`, 'x-real-ip': `198.51.100.${n}`, forwarded: `for=198.51.100.${n}` };
      statuses.push((await t.client().post('/v1/login', { email, password: strongPassword() }, { headers: spoof })).status);
    }
    assert.deepEqual(statuses.slice(LIMIT), [429, 429], statuses.join());
  });
});

describe('X-Forwarded-For from a trusted proxy (TRUSTED_PROXIES=127.0.0.1/32)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { TRUSTED_PROXIES: '127.0.0.1/32', RATE_LIMIT_ANON_PER_MINUTE: String(LIMIT) } });
  });
  after(async () => {
    await t.close();
  });

  test('entries the client prepends are not its address: rotating them does not escape the limit', async () => {
    const statuses: number[] = [];
    for (let n = 1; n <= LIMIT + 2; n++) {
      statuses.push((await t.client().get('/v1/session', { headers: { 'x-forwarded-for': `198.51.100.${n}, 203.0.113.50` } })).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429]);
    // Another client behind the same proxy has its own budget.
    assert.equal((await t.client().get('/v1/session', { headers: { 'x-forwarded-for': '203.0.113.51' } })).status, 401);
  });

  test('a forwarded value that is not an IP address is refused before it is counted or stored as an address', async () => {
    const user = await signUp(t, 'forwarded');
    for (const [n, value] of ['203.0.113.60:4711', '[2001:db8::1]:443', 'unknown', 'not-an-ip', '<script>', '999.1.1.1', 'a'.repeat(300)].entries()) {
      for (let i = 0; i < LIMIT + 1; i++) {
        // A fresh port per request, as a proxy adding source ports would send.
        const forwarded = n === 0 ? `203.0.113.60:${4711 + i}` : value;
        const response = await t.client().post('/v1/login', { email: user.email, password: user.password }, { headers: { 'x-forwarded-for': forwarded } });
        assert.equal(response.status, 400, `${forwarded}: ${response.text}`);
        assert.equal(response.body.code, 'invalid_request');
        assert.equal(response.headers['ratelimit-limit'], undefined, 'refused before any budget was spent');
      }
    }
    const sessions = await t.server.services.stores.main.db.selectFrom('sessions').select('user_id').where('user_id', '=', user.userId).execute();
    assert.equal(sessions.length, 1, 'only the signup made a session');
    // The proxy's well-formed value still works, and is the address.
    const login = await t.client().post('/v1/login', { email: user.email, password: user.password }, { headers: { 'x-forwarded-for': '203.0.113.61' } });
    assert.equal(login.status, 200);
    assert.equal(login.body.session.ip, '203.0.113.61');
  });
});
