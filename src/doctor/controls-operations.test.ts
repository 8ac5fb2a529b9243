import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config/load.js';
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
  assert.equal(control({ DATABASE_URL: 'postgres://db/x', PII_DATABASE_URL: 'postgres://db/y' }, 'Rate limits')?.status, 'warn');
  const shared = control({ DATABASE_URL: 'postgres://db/x', PII_DATABASE_URL: 'postgres://db/y', REDIS_URL: 'redis://:secret@cache:6379' }, 'Rate limits');
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
  const insecure = control({ RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: 'true' }, 'Webhooks');
  assert.equal(insecure?.status, 'warn');
  assert.match(insecure!.detail, /INSECURE option RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS/);
  assert.equal(control({}, 'Metrics')?.status, 'ok');
  assert.equal(control({ METRICS_HOST: '0.0.0.0' }, 'Metrics')?.status, 'warn');
});
