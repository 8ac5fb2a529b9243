import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { RedisRelay } from '../helpers/redis-relay.js';
import { Resources } from '../helpers/resources.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A unique key prefix per test run: runs sharing the Redis never see each other's counters. */
function uniquePrefix(): string {
  return `rampart-test-${process.pid}-${randomBytes(4).toString('hex')}:`;
}

describe('request rate limits (in memory)', () => {
  let t: TestServer;
  after(async () => {
    await t?.close();
  });

  test('429 after the limit with Retry-After and RateLimit-* headers; the anonymous tier is far lower than the authenticated one', async () => {
    t = await startTestServer({ env: { RATE_LIMIT_ANON_PER_MINUTE: '5', RATE_LIMIT_AUTH_PER_MINUTE: '20' } });
    const { client } = await signUp(t, 'limits'); // anonymous request 1 of 5
    const anonymous = t.client();
    for (let i = 2; i <= 5; i++) {
      const response = await anonymous.get('/v1/session');
      assert.equal(response.status, 401, `anonymous request ${i}`);
      assert.equal(response.headers['ratelimit-limit'], '5');
      assert.equal(response.headers['ratelimit-remaining'], String(5 - i));
    }
    const limited = await anonymous.post('/v1/login', { email: uniqueEmail(), password: strongPassword() });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'rate_limited');
    assert.match(String(limited.headers['content-type']), /^application\/problem\+json/);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${limited.headers['retry-after']}`);
    assert.equal(limited.headers['ratelimit-remaining'], '0');
    assert.equal(limited.headers['ratelimit-policy'], '5;w=60');

    // The signed-in user on the same address is counted per session, against the higher tier.
    for (let i = 1; i <= 20; i++) {
      const response = await client.get('/v1/session');
      assert.equal(response.status, 200, `authenticated request ${i}`);
      assert.equal(response.headers['ratelimit-limit'], '20');
    }
    const authLimited = await client.get('/v1/session');
    assert.equal(authLimited.status, 429);
    assert.ok(Number(authLimited.headers['retry-after']) >= 1);

    // Health probes are exempt; their answer has no rate-limit headers.
    const health = await anonymous.get('/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.headers['ratelimit-limit'], undefined);
    const text = (await t.server.services.metrics.registry.getSingleMetricAsString('rampart_rate_limit_hits_total'));
    assert.match(text, /rampart_rate_limit_hits_total\{tier="anon"\} 1/);
    assert.match(text, /rampart_rate_limit_hits_total\{tier="auth"\} 1/);
  });

  test('credential routes are also limited per account, whatever the address', async () => {
    const s = await startTestServer({ env: { RATE_LIMIT_ACCOUNT_PER_MINUTE: '3', TRUSTED_PROXIES: '127.0.0.1/32' } });
    try {
      const email = uniqueEmail('target');
      const from = (n: number) => ({ headers: { 'x-forwarded-for': `203.0.113.${n}` } });
      for (let n = 1; n <= 3; n++) {
        const response = await s.client().post('/v1/login', { email, password: strongPassword() }, from(n));
        assert.equal(response.status, 401);
        // The account tier's counter is not shown while it allows: it would tell a stranger how busy the account is.
        assert.equal(response.headers['ratelimit-limit'], String(s.server.services.rateLimits.limitOf('anon')));
      }
      // Different address, different letter case: the same account.
      const fourth = await s.client().post('/v1/login', { email: email.toUpperCase(), password: strongPassword() }, from(4));
      assert.equal(fourth.status, 429);
      assert.equal(fourth.headers['ratelimit-limit'], '3');
      assert.equal((await s.client().post('/v1/login', { email: uniqueEmail('other'), password: strongPassword() }, from(4))).status, 401, 'another account is not affected');
    } finally {
      await s.close();
    }
  });

  test('an address presenting bad credentials is stopped before authentication', async () => {
    const s = await startTestServer({ env: { RATE_LIMIT_ANON_PER_MINUTE: '3' } });
    try {
      const guesser = s.client();
      for (let i = 0; i < 3; i++) {
        const response = await guesser.get('/v1/session', { headers: { authorization: `Bearer rpat_${randomBytes(20).toString('hex')}` } });
        assert.equal(response.status, 401);
      }
      const stopped = await guesser.get('/v1/session', { headers: { authorization: `Bearer rpat_${randomBytes(20).toString('hex')}` } });
      assert.equal(stopped.status, 429);
    } finally {
      await s.close();
    }
  });
});

describe('request rate limits in Redis', () => {
  test('two server instances on one Redis share their counters; keys hold no address or email', async () => {
    const prefix = uniquePrefix();
    const env = { RATE_LIMIT_ANON_PER_MINUTE: '5', REDIS_URL, REDIS_KEY_PREFIX: prefix };
    const open = new Resources();
    try {
      const a = open.add(await startTestServer({ env }), (server) => server.close());
      const b = open.add(await startTestServer({ env, dataDir: a.dataDir }), (server) => server.close({ keepData: true }));
      const redis = open.add(new Redis(REDIS_URL), (client) => client.disconnect());
      const email = uniqueEmail('shared');
      const statuses: number[] = [];
      for (const server of [a, b, a, b, a]) statuses.push((await server.client().post('/v1/login', { email, password: strongPassword() })).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
      const sixth = await b.client().get('/v1/session');
      assert.equal(sixth.status, 429, 'the budget spent on A counts on B');
      assert.equal(sixth.headers['ratelimit-remaining'], '0');

      const keys = await redis.keys(`${prefix}*`);
      assert.ok(keys.length >= 2, keys.join());
      for (const key of keys) {
        assert.ok(!key.includes('127.0.0.1') && !key.includes(email) && !key.includes('@'), `no personal data in ${key}`);
        assert.match(key, /^rampart-test-\d+-[0-9a-f]{8}:rl:(anon|auth|account|badauth):[A-Za-z0-9_-]{22}$/);
      }
    } finally {
      await open.close();
    }
  });

  test('Redis down: credential routes fail closed, the rest fail open and are counted', async () => {
    const open = new Resources();
    try {
      // A relay in front of Redis that the test cuts below (the outage).
      const relay = open.add(await new RedisRelay().start(), (r) => r.close());
      const s = open.add(await startTestServer({ env: { REDIS_URL: relay.url, REDIS_KEY_PREFIX: uniquePrefix() } }), (server) => server.close());
      const { client, email, password } = await signUp(s, 'outage');
      assert.equal((await client.get('/v1/session')).status, 200);

      await relay.cut();
      // Wait for the client to notice the cut (an event, not a timer being tested).
      for (let i = 0; i < 200 && s.server.services.redis!.status === 'ready'; i++) await new Promise((r) => setTimeout(r, 10));
      assert.notEqual(s.server.services.redis!.status, 'ready');

      const login = await s.client().post('/v1/login', { email, password });
      assert.equal(login.status, 503, 'no guessing while limits cannot be counted');
      assert.equal(login.body.code, 'rate_limiter_unavailable');
      assert.equal(login.headers['retry-after'], '5');
      const session = await client.get('/v1/session');
      assert.equal(session.status, 200, 'signed-in traffic keeps working');
      const metric = await s.server.services.metrics.registry.getSingleMetricAsString('rampart_rate_limit_store_errors_total');
      assert.match(metric, /decision="refused"[^\n]*\} [1-9]/);
      assert.match(metric, /decision="allowed"[^\n]*\} [1-9]/);
    } finally {
      await open.close();
    }
  });
});
