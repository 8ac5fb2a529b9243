import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { defaultOrgPolicy } from '../policy/org-policy.js';
import type { MembershipWithOrg } from '../store/repositories/orgs.js';
import { resolvePolicy } from './policy-resolver.js';

const config = loadConfig({ env: { RAMPART_DATA_DIR: '/nonexistent-rampart-test' }, flags: {} });

function membership(orgId: string, joinedAt: number, mfaSince: number | null, change: (p: ReturnType<typeof defaultOrgPolicy>) => void = () => {}): MembershipWithOrg {
  const policy = defaultOrgPolicy();
  change(policy);
  return { org_id: orgId, role: 'member', joined_at: joinedAt, name: `Name ${orgId}`, slug: orgId, policy: JSON.stringify(policy), mfa_required_since: mfaSince };
}

test('mfaRequiredSince: the later of "turned on" and "joined", earliest over requiring orgs', () => {
  const requireMfa = (p: ReturnType<typeof defaultOrgPolicy>) => { p.mfa.required = true; };
  // Org a required MFA at 100, the user joined at 500: the requirement reached them at 500.
  // Org b turned it on at 300 after the user joined at 50: 300. Earliest: 300.
  const policy = resolvePolicy(config, [membership('a', 500, 100, requireMfa), membership('b', 50, 300, requireMfa), membership('c', 10, null)]);
  assert.equal(policy.mfa.required, true);
  assert.equal(policy.mfaRequiredSince, 300);
  assert.equal(resolvePolicy(config, [membership('c', 10, null)]).mfaRequiredSince, null);
});

test('context words: product name and org names; no orgs gives the base policy', () => {
  const policy = resolvePolicy(config, [membership('a', 1, null), membership('b', 1, null)]);
  assert.deepEqual(policy.contextWords, [config.productName, 'Name a', 'Name b']);
  assert.deepEqual(policy.orgIds, ['a', 'b']);
  const none = resolvePolicy(config, []);
  assert.equal(none.password.minLength, config.passwordMinLength);
  assert.deepEqual(none.orgIds, []);
});

test('a stored policy missing a newer member reads it as its secure default', () => {
  const partial = { ...membership('a', 1, null), policy: JSON.stringify({ password: { minLength: 20 } }) };
  const policy = resolvePolicy(config, [partial]);
  assert.equal(policy.password.minLength, 20);
  assert.equal(policy.password.blockCommon, true);
  assert.equal(policy.tokens.maxLifetimeDays, 90);
});

test('MFA_REQUIRED_FOR_ALL: a baseline under the orgs; the earliest deadline applies, a stricter org wins', () => {
  const H = 3_600_000;
  const on = loadConfig({ env: { RAMPART_DATA_DIR: '/nonexistent-rampart-test', MFA_REQUIRED_FOR_ALL: 'true', MFA_REQUIRED_GRACE_HOURS: '72' }, flags: {} });
  const alone = resolvePolicy(on, [], 1_000 * H);
  assert.deepEqual(alone.mfa, { required: true, methods: ['totp', 'webauthn'], gracePeriodHours: 72 });
  assert.equal(alone.mfaRequiredSince, 1_000 * H);
  assert.equal(alone.mfaRequiredByDeployment, true);
  // No start known: the requirement fails closed.
  assert.equal(resolvePolicy(on, []).mfaRequiredSince, null);
  // An org that is stricter (fewer methods, shorter grace, earlier deadline) wins.
  const strict = resolvePolicy(on, [membership('s', 0, 990 * H, (p) => { p.mfa = { required: true, methods: ['webauthn'], gracePeriodHours: 24 }; })], 1_000 * H);
  assert.deepEqual(strict.mfa.methods, ['webauthn']);
  assert.equal(strict.mfa.gracePeriodHours, 24);
  assert.equal(strict.mfaRequiredSince! + 24 * H, 1_014 * H, 'the org deadline (990 h + 24 h)');
  // An older org requirement with a longer grace does not cut short the grace the switch-on gives.
  const lax = resolvePolicy(on, [membership('l', 0, 900 * H, (p) => { p.mfa = { required: true, methods: ['totp', 'webauthn'], gracePeriodHours: 720 }; })], 1_000 * H);
  assert.equal(lax.mfa.gracePeriodHours, 72);
  assert.equal(lax.mfaRequiredSince! + 72 * H, 1_072 * H, 'the deployment deadline (1000 h + 72 h) is the earlier one');
  // Off: no baseline, whatever start is passed.
  const off = resolvePolicy(config, [], 1_000 * H);
  assert.equal(off.mfa.required, false);
  assert.equal(off.mfaRequiredByDeployment, false);
});
