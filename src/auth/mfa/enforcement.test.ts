import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decideMfa, type FactorMethod, graceEndsAt, sessionSatisfiesPolicy } from './enforcement.js';

const HOUR = 3_600_000;
const since = Date.UTC(2026, 0, 1);

function policy(required: boolean, methods: FactorMethod[] = ['totp', 'webauthn'], gracePeriodHours = 72, mfaRequiredSince: number | null = since) {
  return { mfa: { required, methods, gracePeriodHours }, mfaRequiredSince: required ? mfaRequiredSince : null };
}

test('nothing required: a factor is challenged, no factor logs straight in', () => {
  assert.deepEqual(decideMfa({ own: [], policy: policy(false), now: since, graceRestartedAt: null }), { kind: 'none' });
  assert.deepEqual(decideMfa({ own: ['totp'], policy: policy(false, ['webauthn']), now: since, graceRestartedAt: null }), { kind: 'challenge', methods: ['totp'], enrollmentOnly: false });
});

test('required: members with a counting factor must use it, whatever the grace', () => {
  const decision = decideMfa({ own: ['totp', 'webauthn'], policy: policy(true, ['webauthn']), now: since + 1000 * HOUR, graceRestartedAt: null });
  assert.deepEqual(decision, { kind: 'challenge', methods: ['webauthn'], enrollmentOnly: false });
});

test('required, no factor: enrollment session during the grace, refusal after it', () => {
  const during = decideMfa({ own: [], policy: policy(true), now: since + 71 * HOUR, graceRestartedAt: null });
  assert.deepEqual(during, { kind: 'enroll', enrollBefore: since + 72 * HOUR });
  assert.deepEqual(decideMfa({ own: [], policy: policy(true), now: since + 72 * HOUR, graceRestartedAt: null }), { kind: 'refuse' });
  assert.deepEqual(decideMfa({ own: [], policy: policy(true, ['totp'], 0), now: since, graceRestartedAt: null }), { kind: 'refuse' }, 'no grace at all');
});

test('a factor the org does not count: proved, then enrollment only; refused after the grace', () => {
  assert.deepEqual(
    decideMfa({ own: ['totp'], policy: policy(true, ['webauthn']), now: since + HOUR, graceRestartedAt: null }),
    { kind: 'challenge', methods: ['totp'], enrollmentOnly: true },
  );
  assert.deepEqual(decideMfa({ own: ['totp'], policy: policy(true, ['webauthn']), now: since + 80 * HOUR, graceRestartedAt: null }), { kind: 'refuse' });
});

test('an admin reset restarts the grace; a requirement without a start time fails closed', () => {
  const reset = since + 100 * HOUR;
  assert.equal(decideMfa({ own: [], policy: policy(true), now: reset + HOUR, graceRestartedAt: reset }).kind, 'enroll');
  assert.equal(graceEndsAt(policy(true), reset), reset + 72 * HOUR);
  assert.equal(decideMfa({ own: [], policy: policy(true, ['totp'], 72, null), now: since, graceRestartedAt: null }).kind, 'refuse');
  assert.equal(graceEndsAt(policy(false), reset), null);
});

test('sessions satisfy a requirement only when verified with a counting method (or a recovery code)', () => {
  const required = policy(true, ['webauthn']);
  assert.equal(sessionSatisfiesPolicy({ mfa_verified: 0, mfa_method: null }, policy(false)), true);
  assert.equal(sessionSatisfiesPolicy({ mfa_verified: 0, mfa_method: null }, required), false);
  assert.equal(sessionSatisfiesPolicy({ mfa_verified: 1, mfa_method: 'totp' }, required), false);
  assert.equal(sessionSatisfiesPolicy({ mfa_verified: 1, mfa_method: 'webauthn' }, required), true);
  assert.equal(sessionSatisfiesPolicy({ mfa_verified: 1, mfa_method: 'recovery_code' }, required), true);
  assert.equal(sessionSatisfiesPolicy({ mfa_verified: 0, mfa_method: 'webauthn' }, required), false);
});

test('property: with a requirement, nobody without a counting factor gets a full login after the grace', () => {
  const method = fc.constantFrom<FactorMethod>('totp', 'webauthn');
  fc.assert(fc.property(
    fc.uniqueArray(method, { maxLength: 2 }),
    fc.uniqueArray(method, { minLength: 1, maxLength: 2 }),
    fc.integer({ min: 0, max: 720 }),
    fc.integer({ min: 0, max: 2000 }),
    (own, methods, graceHours, hoursLater) => {
      const decision = decideMfa({ own, policy: policy(true, methods, graceHours), now: since + hoursLater * HOUR, graceRestartedAt: null });
      const counting = own.filter((m) => methods.includes(m));
      if (counting.length > 0) {
        assert.deepEqual(decision, { kind: 'challenge', methods: counting, enrollmentOnly: false });
      } else if (hoursLater >= graceHours) {
        assert.equal(decision.kind, 'refuse');
      } else {
        assert.ok(decision.kind === 'enroll' || (decision.kind === 'challenge' && decision.enrollmentOnly));
      }
    },
  ));
});
