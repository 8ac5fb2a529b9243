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
