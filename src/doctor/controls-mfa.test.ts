import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { checkControls } from './controls.js';

const base = { RAMPART_DATA_DIR: '/nonexistent-rampart-doctor-mfa' };

function control(env: Record<string, string>) {
  const checks = checkControls(loadConfig({ env: { ...base, ...env }, flags: {} }));
  return { check: checks.find((c) => c.control === 'Second factor'), fails: checks.filter((c) => c.status === 'fail') };
}

test('doctor: a second factor for every account is ok; only where orgs require it is a warning, never a failure', () => {
  const off = control({});
  assert.equal(off.check?.status, 'warn');
  assert.match(off.check!.detail, /only where an org policy requires it/);
  assert.match(off.check!.detail, /V6\.3\.3/);
  assert.match(off.check!.detail, /MFA_REQUIRED_FOR_ALL/);
  assert.deepEqual(off.fails, [], 'the default does not make doctor exit non-zero');
  const on = control({ MFA_REQUIRED_FOR_ALL: 'true', MFA_REQUIRED_GRACE_HOURS: '24' });
  assert.equal(on.check?.status, 'ok');
  assert.match(on.check!.detail, /24 h grace/);
  assert.throws(() => loadConfig({ env: { ...base, MFA_REQUIRED_GRACE_HOURS: '0' }, flags: {} }), /MFA_REQUIRED_GRACE_HOURS/);
});
