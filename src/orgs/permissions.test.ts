import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTION_SCOPES, ORG_ACTIONS, ORG_ROLES, ROLE_PERMISSIONS, roleAllows } from './permissions.js';

// The table written out by hand from API.md, independently of the code's construction:
// a change to ROLE_PERMISSIONS must change this test too (ASVS V8.1.1).
const EXPECTED: Record<string, string[]> = {
  'org.read': ['owner', 'admin', 'auditor', 'member'],
  'members.read': ['owner', 'admin', 'auditor', 'member'],
  'members.leave': ['owner', 'admin', 'auditor', 'member'],
  'policy.read': ['owner', 'admin', 'auditor', 'member'],
  'audit.read': ['owner', 'admin', 'auditor'],
  'members.invite': ['owner', 'admin'],
  'members.update_role': ['owner', 'admin'],
  'members.remove': ['owner', 'admin'],
  'policy.update': ['owner', 'admin'],
  'webhooks.read': ['owner', 'admin'],
  'webhooks.manage': ['owner', 'admin'],
  'members.manage_owners': ['owner'],
};

test('the org permission table, role by action', () => {
  assert.deepEqual(new Set(Object.keys(EXPECTED)), new Set(ORG_ACTIONS));
  for (const action of ORG_ACTIONS) {
    for (const role of ORG_ROLES) {
      assert.equal(roleAllows(role, action), EXPECTED[action]!.includes(role), `${role} ${action}`);
    }
  }
});

test('the table cannot be changed at run time', () => {
  assert.ok(Object.isFrozen(ROLE_PERMISSIONS));
  assert.throws(() => { (ROLE_PERMISSIONS as Record<string, unknown>)['member'] = ROLE_PERMISSIONS.owner; });
  assert.throws(() => { (ROLE_PERMISSIONS.member as string[]).push('policy.update'); });
  assert.equal(roleAllows('member', 'policy.update'), false);
});

test('every action names the token scope it needs; writes need org:admin, audit needs audit:read', () => {
  for (const action of ORG_ACTIONS) assert.ok([ACTION_SCOPES[action]].flat().every((scope) => ['org:read', 'org:admin', 'audit:read'].includes(scope)), action);
  assert.equal(ACTION_SCOPES['audit.read'], 'audit:read');
  for (const action of ['members.invite', 'members.update_role', 'members.remove', 'policy.update', 'webhooks.manage'] as const) {
    assert.equal(ACTION_SCOPES[action], 'org:admin');
  }
  for (const action of ['org.read', 'members.read', 'policy.read'] as const) assert.equal(ACTION_SCOPES[action], 'org:read');
  assert.deepEqual(ACTION_SCOPES['webhooks.read'], ['org:read', 'org:admin'], 'reading webhooks: org:read, or the org:admin a token managing them holds');
});
