import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { backendTransportProblem } from '../config/schema.js';
import { checkControls } from './controls.js';

const base = { RAMPART_DATA_DIR: '/nonexistent-rampart-doctor' };

function control(env: Record<string, string>, name: string) {
  return checkControls(loadConfig({ env: { ...base, ...env }, flags: {} })).find((check) => check.control === name);
}

test('doctor reports disabled rate limits loudly and per-process counters behind a shared database', () => {
  assert.equal(control({}, 'Rate limits')?.status, 'ok');
  const off = control({ RAMPART_INSECURE_DISABLE_RATE_LIMITS: 'true' }, 'Rate limits');
  assert.equal(off?.status, 'warn');
  assert.match(off!.detail, /INSECURE option RAMPART_INSECURE_DISABLE_RATE_LIMITS/);
  assert.equal(control({ DATABASE_URL: 'postgres://db/x?sslmode=verify-full', PII_DATABASE_URL: 'postgres://db/y?sslmode=verify-full' }, 'Rate limits')?.status, 'warn');
  const shared = control({ DATABASE_URL: 'postgres://db/x?sslmode=verify-full', PII_DATABASE_URL: 'postgres://db/y?sslmode=verify-full', REDIS_URL: 'rediss://:secret@cache:6379' }, 'Rate limits');
  assert.equal(shared?.status, 'ok');
  assert.ok(!shared!.detail.includes('secret'), 'the Redis password is not printed');
  assert.equal(control({ RATE_LIMIT_ANON_PER_MINUTE: '1000', RATE_LIMIT_AUTH_PER_MINUTE: '10' }, 'Rate limit tiers')?.status, 'warn');
});

test('rate-limit and back-off options are validated at start-up', () => {
  assert.throws(() => loadConfig({ env: { ...base, RATE_LIMIT_ANON_PER_MINUTE: '0' }, flags: {} }), /at least 1/);
  assert.throws(() => loadConfig({ env: { ...base, REDIS_URL: 'http://cache' }, flags: {} }), /REDIS_URL must use/);
  assert.throws(() => loadConfig({ env: { ...base, REDIS_KEY_PREFIX: 'bad prefix' }, flags: {} }), /REDIS_KEY_PREFIX/);
  assert.throws(() => loadConfig({ env: { ...base, AUDIT_RETENTION_DAYS: '7' }, flags: {} }), /at least 30/);
  const defaults = loadConfig({ env: base, flags: {} });
  assert.ok(defaults.rateLimitAnonPerMinute * 10 <= defaults.rateLimitAuthPerMinute, 'the anonymous tier is far lower by default');
});

test('doctor reports webhooks to private networks and a metrics listener off loopback', () => {
  assert.equal(control({}, 'Webhooks')?.status, 'ok');
  assert.match(control({}, 'Webhooks')!.detail, /to any public host \(narrow with WEBHOOK_ALLOWED_HOSTS\)/);
  assert.match(control({ WEBHOOK_ALLOWED_HOSTS: 'hooks.example.com,*.acme.example' }, 'Webhooks')!.detail, /only to hooks\.example\.com, \*\.acme\.example/);
  assert.throws(() => loadConfig({ env: { ...base, WEBHOOK_ALLOWED_HOSTS: 'Hooks.Example.com/path' }, flags: {} }), /WEBHOOK_ALLOWED_HOSTS: "Hooks.Example.com\/path" is not/);
  const insecure = control({ RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: 'true' }, 'Webhooks');
  assert.equal(insecure?.status, 'warn');
  assert.match(insecure!.detail, /INSECURE option RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS/);
  assert.equal(control({}, 'Metrics')?.status, 'ok');
  assert.equal(control({ METRICS_HOST: '0.0.0.0' }, 'Metrics')?.status, 'warn');
});

test('a store or Redis reached over the network without verified TLS stops start-up unless the loud option allows it, and doctor warns then (ASVS V12.3.1, V12.3.2)', () => {
  assert.equal(control({}, 'Backend connections'), undefined, 'SQLite and in-memory counters: no connection to speak of');
  assert.equal(control({}, 'Database role'), undefined);
  assert.match(control({ DATABASE_URL: 'postgres://127.0.0.1/x' }, 'Database role')!.detail, /its role owns the schema .* MIGRATE_ON_START=false/);
  assert.match(control({ DATABASE_URL: 'postgres://127.0.0.1/x', MIGRATE_ON_START: 'false' }, 'Database role')!.detail, /only checks the schema/);
  const local = control({ DATABASE_URL: 'postgres://u:p@127.0.0.1/x', PII_DATABASE_URL: 'postgres://u:p@localhost/y', REDIS_URL: 'redis://[::1]:6379' }, 'Backend connections');
  assert.equal(local?.status, 'ok', local?.detail);
  const verified = control({ DATABASE_URL: 'postgres://db.internal/x?sslmode=verify-full', PII_DATABASE_URL: 'postgres:///y?host=/var/run/postgresql', REDIS_URL: 'rediss://cache:6380' }, 'Backend connections');
  assert.equal(verified?.status, 'ok', verified?.detail);
  for (const [env, reason] of [
    [{ DATABASE_URL: 'postgres://u:secret@db.internal/x' }, /DATABASE_URL .*plaintext/],
    [{ DATABASE_URL: 'postgres://db.internal/x?sslmode=disable' }, /plaintext/],
    [{ DATABASE_URL: 'postgres://db/x', PII_DATABASE_URL: 'postgres://pii.internal/y?sslmode=no-verify' }, /PII_DATABASE_URL .*without certificate verification/],
    [{ DATABASE_URL: 'postgres://db/x?sslmode=require&uselibpqcompat=true' }, /not verified/],
    [{ REDIS_URL: 'redis://:secret@cache.internal:6379' }, /REDIS_URL .*plaintext/],
  ] as const) {
    const name = Object.keys(env).find((key) => backendTransportProblem((env as Record<string, string>)[key]!) !== null)!;
    assert.throws(() => loadConfig({ env: { ...base, ...env }, flags: {} }), (error: Error) => {
      assert.match(error.message, new RegExp(`^${name} would reach its server unprotected \\(.+\\): refused \\(ASVS V12\\.3\\.1\\); set RAMPART_INSECURE_BACKENDS_WITHOUT_TLS=true to allow it$`));
      assert.ok(!error.message.includes('secret'), 'no password in the refusal');
      return true;
    }, JSON.stringify(env));
    const check = control({ ...env, RAMPART_INSECURE_BACKENDS_WITHOUT_TLS: 'true' }, 'Backend connections');
    assert.equal(check?.status, 'warn', JSON.stringify(env));
    assert.match(check!.detail, reason);
    assert.match(check!.detail, /^INSECURE option RAMPART_INSECURE_BACKENDS_WITHOUT_TLS/);
    assert.ok(!check!.detail.includes('secret'), 'no password in the report');
  }
});

test('doctor says how Redis authenticates Rampart: a password (never printed), nothing on loopback, nothing off loopback (a warning)', () => {
  const password = control({ REDIS_URL: 'rediss://:s3cret@cache.internal:6380' }, 'Redis authentication');
  assert.equal(password?.status, 'ok');
  assert.match(password!.detail, /^password in REDIS_URL/);
  assert.ok(!password!.detail.includes('s3cret'));
  assert.equal(control({ REDIS_URL: 'redis://127.0.0.1:6379' }, 'Redis authentication')?.status, 'ok');
  const open = control({ REDIS_URL: 'rediss://cache.internal:6380' }, 'Redis authentication');
  assert.equal(open?.status, 'warn');
  assert.match(open!.detail, /anyone who reaches rediss:\/\/cache\.internal:6380 can read and reset the rate-limit counters/);
  assert.equal(control({}, 'Redis authentication'), undefined, 'no Redis, no row');
});
