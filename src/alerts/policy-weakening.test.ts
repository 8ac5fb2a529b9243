import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { defaultOrgPolicy, type OrgPolicy } from '../policy/org-policy.js';
import { weakenedPolicyFields } from './policy-weakening.js';

function change(edit: (policy: OrgPolicy) => void, base: OrgPolicy = defaultOrgPolicy()): OrgPolicy {
  const policy = structuredClone(base);
  edit(policy);
  return policy;
}

test('each loosened setting is named; tightening is not a weakening', () => {
  const base = change((p) => {
    p.mfa.required = true;
    p.mfa.methods = ['webauthn'];
    p.network.ipAllowlist = ['10.0.0.0/8', '192.0.2.0/24'];
  });
  const cases: Array<[string, (p: OrgPolicy) => void]> = [
    ['password.minLength', (p) => void (p.password.minLength = 10)],
    ['password.minStrength', (p) => void (p.password.minStrength = 2)],
    ['password.historyCount', (p) => void (p.password.historyCount = 0)],
    ['password.blockCommon', (p) => void (p.password.blockCommon = false)],
    ['mfa.required', (p) => void (p.mfa.required = false)],
    ['mfa.methods', (p) => void (p.mfa.methods = ['webauthn', 'totp'])],
    ['mfa.gracePeriodHours', (p) => void (p.mfa.gracePeriodHours = 100)],
    ['session.idleTimeoutMinutes', (p) => void (p.session.idleTimeoutMinutes = 120)],
    ['session.absoluteTimeoutHours', (p) => void (p.session.absoluteTimeoutHours = 24)],
    ['network.ipAllowlist', (p) => void (p.network.ipAllowlist = [])],
    ['network.ipAllowlist', (p) => void p.network.ipAllowlist.push('0.0.0.0/0')],
    ['tokens.maxLifetimeDays', (p) => void (p.tokens.maxLifetimeDays = 365)],
  ];
  for (const [field, edit] of cases) assert.deepEqual(weakenedPolicyFields(base, change(edit, base)), [field], field);
  const stricter = change((p) => {
    p.password.minLength = 16;
    p.session.idleTimeoutMinutes = 15;
    p.network.ipAllowlist = ['10.0.0.0/8'];
    p.password.maxAgeDays = 90;
  }, base);
  assert.deepEqual(weakenedPolicyFields(base, stricter), []);
  assert.deepEqual(weakenedPolicyFields(base, base), []);
});

test('a policy never weakens itself, and a change and its reverse are never both weakenings of the same field', () => {
  const policy = fc.record({
    minLength: fc.integer({ min: 8, max: 64 }), idle: fc.integer({ min: 1, max: 1440 }), required: fc.boolean(), allow: fc.boolean(),
  }).map(({ minLength, idle, required, allow }) => change((p) => {
    p.password.minLength = minLength;
    p.session.idleTimeoutMinutes = idle;
    p.mfa.required = required;
    p.network.ipAllowlist = allow ? ['192.0.2.0/24'] : [];
  }));
  fc.assert(fc.property(policy, policy, (a, b) => {
    assert.deepEqual(weakenedPolicyFields(a, a), []);
    const forward = weakenedPolicyFields(a, b);
    const backward = weakenedPolicyFields(b, a);
    assert.ok(!forward.some((field) => backward.includes(field)), `${forward} / ${backward}`);
  }));
});
