import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyOrgPolicy, DEFAULT_ORG_POLICY, defaultOrgPolicy, type OrgPolicy, strictestPolicy } from './org-policy.js';

/** Writes a different value into every member of a policy, arrays included (in place and by replacement). */
function scribble(policy: OrgPolicy): void {
  policy.password.minLength = 99;
  policy.password.maxAgeDays = 1;
  policy.mfa.required = true;
  policy.mfa.methods.push('totp');
  policy.mfa.methods.splice(0, 1);
  policy.session.idleTimeoutMinutes = 1;
  policy.network.ipAllowlist.push('10.0.0.0/8');
  policy.tokens.maxLifetimeDays = 1;
}

const pristine = (): OrgPolicy => JSON.parse(JSON.stringify(DEFAULT_ORG_POLICY)) as OrgPolicy;

test('the default policy is frozen to its leaves', () => {
  assert.throws(() => { (DEFAULT_ORG_POLICY.password as { minLength: number }).minLength = 8; }, TypeError);
  assert.throws(() => { (DEFAULT_ORG_POLICY.mfa.methods as string[]).push('sms'); }, TypeError);
  assert.throws(() => { (DEFAULT_ORG_POLICY.network.ipAllowlist as string[]).push('0.0.0.0/0'); }, TypeError);
});

test('defaultOrgPolicy and copyOrgPolicy share no object with their source', () => {
  const copy = defaultOrgPolicy();
  assert.deepEqual(copy, pristine());
  scribble(copy);
  assert.deepEqual(JSON.parse(JSON.stringify(DEFAULT_ORG_POLICY)), pristine(), 'the default is unchanged');
  assert.deepEqual(defaultOrgPolicy(), pristine(), 'the next copy is the default again');

  const source = defaultOrgPolicy();
  source.network.ipAllowlist = ['192.0.2.0/24'];
  const second = copyOrgPolicy(source);
  assert.deepEqual(second, source);
  scribble(second);
  assert.deepEqual(source.network.ipAllowlist, ['192.0.2.0/24']);
  assert.deepEqual(source.mfa.methods, ['totp', 'webauthn']);
  assert.equal(source.password.minLength, 12);
});

test('strictestPolicy changes neither the base nor the org policies it merges', () => {
  const base = defaultOrgPolicy();
  const org = defaultOrgPolicy();
  org.mfa = { required: true, methods: ['webauthn'], gracePeriodHours: 24 };
  org.password.minLength = 16;
  const before = JSON.stringify([base, org]);
  const merged = strictestPolicy([org], base);
  assert.equal(merged.password.minLength, 16);
  assert.deepEqual(merged.mfa, { required: true, methods: ['webauthn'], gracePeriodHours: 24 });
  scribble(merged);
  assert.equal(JSON.stringify([base, org]), before);
});
