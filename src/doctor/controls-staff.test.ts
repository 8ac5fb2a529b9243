import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { checkControls } from './controls.js';

const base = { RAMPART_DATA_DIR: '/nonexistent-rampart-doctor-staff' };

test('doctor: staff roles one at a time by default; a relaxed STAFF_CONFLICTING_ROLES is a warning', () => {
  const strict = checkControls(loadConfig({ env: base, flags: {} })).find((c) => c.control === 'Staff roles');
  assert.equal(strict?.status, 'ok');
  const relaxed = checkControls(loadConfig({ env: { ...base, STAFF_CONFLICTING_ROLES: 'security:auditor' }, flags: {} })).find((c) => c.control === 'Staff roles');
  assert.equal(relaxed?.status, 'warn');
  assert.match(relaxed!.detail, /security:auditor/);
  assert.throws(() => loadConfig({ env: { ...base, STAFF_CONFLICTING_ROLES: 'security:root' }, flags: {} }), /STAFF_CONFLICTING_ROLES/);
});
