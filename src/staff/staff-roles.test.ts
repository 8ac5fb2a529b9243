import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStaffConflicts, STAFF_ACTIONS, STAFF_PERMISSIONS, STAFF_ROLES, staffRoleAllows } from './staff-roles.js';

// Written out by hand from API.md "Staff"; a change to STAFF_PERMISSIONS must change this too.
const EXPECTED: Record<string, string[]> = {
  'users.read': ['support'],
  'users.lock': ['operator', 'security'],
  'users.unlock': ['operator', 'security'],
  'users.reset_mfa': ['operator', 'security'],
  'audit.read': ['auditor', 'security'],
};

test('the staff permission table, role by action', () => {
  assert.deepEqual(new Set(Object.keys(EXPECTED)), new Set(STAFF_ACTIONS));
  for (const action of STAFF_ACTIONS) {
    for (const role of STAFF_ROLES) assert.equal(staffRoleAllows(role, action), EXPECTED[action]!.includes(role), `${role} ${action}`);
  }
  assert.throws(() => { (STAFF_PERMISSIONS.support as string[]).push('users.lock'); });
  assert.equal(staffRoleAllows('support', 'users.lock'), false);
});

test('conflicting roles: "*" (the default) makes every pair conflict', () => {
  const all = parseStaffConflicts(['*']);
  for (const a of STAFF_ROLES) for (const b of STAFF_ROLES) assert.equal(all.conflict(a, b), true);
});

test('conflicting roles: listed pairs only, both ways; a role always conflicts with itself', () => {
  const some = parseStaffConflicts(['security:auditor', 'support:operator']);
  assert.equal(some.conflict('auditor', 'security'), true);
  assert.equal(some.conflict('security', 'auditor'), true);
  assert.equal(some.conflict('operator', 'support'), true);
  assert.equal(some.conflict('support', 'auditor'), false);
  assert.equal(some.conflict('support', 'support'), true);
  assert.equal(parseStaffConflicts([]).conflict('support', 'operator'), false);
});

test('conflicting roles: a typo refuses start-up', () => {
  for (const bad of [['support'], ['support:root'], ['support:support'], ['a:b:c'], ['*', 'support:operator']]) {
    assert.throws(() => parseStaffConflicts(bad), { name: 'ConfigError' }, JSON.stringify(bad));
  }
});
