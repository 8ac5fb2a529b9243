/**
 * Threat: a value a user chose breaks out of the JSON it is sent back in (ASVS V1.2.3): a
 * name holding quotes, braces, a closing script tag or an HTML comment, echoed by string
 * building, would add members to an answer ("role":"owner"), split an NDJSON export line,
 * or end a script block in a page that inlines the answer. Every answer is built by a
 * serializer, so the value comes back as one string, exactly as given, wherever it appears.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { uniqueSlug } from '../helpers/orgs.js';

const HOSTILE = 'Robert", "role": "owner", "x": {"y": "</script><script>alert(1)</script><!-- \\" \' ` ${x} }]';

describe('a user-chosen value never breaks out of the JSON it is returned in', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  test('a hostile name comes back as the same one string in the session, the member list, the export and the audit export', async () => {
    const client = t.client();
    const email = uniqueEmail('json');
    const signup = await client.post('/v1/signup', { email, password: strongPassword(), name: HOSTILE });
    assert.equal(signup.status, 201, signup.text);
    assert.equal(JSON.parse(signup.text).user.name, HOSTILE);
    const session = await client.get('/v1/session');
    assert.deepEqual(Object.keys(JSON.parse(session.text)).sort(), ['csrfToken', 'orgs', 'session', 'user']);
    assert.equal(JSON.parse(session.text).user.name, HOSTILE);
    assert.equal(JSON.parse(session.text).user.role, undefined);

    // Org names refuse < and > (they are shown in mail); the quotes and braces stay.
    const orgName = 'Acme", "role": "owner", "x": {"y": "\\" \' ` ${x} }]';
    const org = await client.post('/v1/orgs', { name: orgName, slug: uniqueSlug('json') });
    assert.equal(org.status, 201, org.text);
    const orgId = org.body.org.id as string;
    assert.equal(JSON.parse(org.text).org.name, orgName);
    const members = JSON.parse((await client.get(`/v1/orgs/${orgId}/members`)).text) as { members: Array<Record<string, unknown>> };
    assert.equal(members.members[0]!['name'], HOSTILE);
    assert.deepEqual(Object.keys(members.members[0]!).sort(), ['email', 'mfaEnabled', 'name', 'role', 'userId']);

    const exported = await client.get('/v1/me/export');
    assert.equal(exported.status, 200, exported.text);
    assert.equal(JSON.parse(exported.text).user.name, HOSTILE);

    const audit = await client.get(`/v1/orgs/${orgId}/audit/export`);
    assert.equal(audit.status, 200, audit.text);
    const lines = audit.text.split('\n').filter(Boolean);
    assert.ok(lines.length > 0);
    for (const line of lines) assert.equal(typeof JSON.parse(line), 'object', 'every NDJSON line is one JSON value');
  });
});
