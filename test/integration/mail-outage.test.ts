/**
 * ASVS V16.5.2: an external resource that fails must not turn into an internal
 * error or a hung request. An invitation's link exists only in its mail, so
 * when the SMTP relay refuses the connection, or accepts it and never speaks,
 * the inviter gets `503 mail_unavailable` with Retry-After within the relay
 * timeout, the log names the cause, and the rest of the API keeps working.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.js';
import { SMTP_TIMEOUT_MS } from '../../src/mail/mailer.js';
import { signUp, startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { startSmtpSink, waitFor } from '../helpers/mail.js';
import { captureEvents, createOrgWithRoles } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';

describe('invitations while the SMTP relay is down', () => {
  let silent: Server;
  let silentPort: number;
  const held = new Set<Socket>();
  before(async () => {
    // Accepts connections and never says a word (a hung relay).
    silent = createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as AddressInfo).port;
  });
  after(async () => {
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  for (const [name, port] of [['refuses connections', () => 1], ['never answers', () => silentPort]] as const) {
    test(`a relay that ${name}: 503 mail_unavailable with Retry-After, logged, in bounded time`, async () => {
      let t: TestServer | null = null;
      try {
        t = await startTestServer({ env: { SMTP_URL: `smtp://127.0.0.1:${port()}`, RAMPART_INSECURE_SMTP_WITHOUT_TLS: 'true' } });
        const org = await createOrgWithRoles(t, 'outage');
        const started = Date.now();
        const response = await org.users.owner.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: uniqueEmail('unsent'), role: 'member' });
        const elapsed = Date.now() - started;
        assert.equal(response.status, 503, response.text);
        assert.equal(response.body.code, 'mail_unavailable');
        assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
        assert.equal(response.headers['retry-after'], '60');
        assert.ok(elapsed < SMTP_TIMEOUT_MS + 3000, `answered in ${elapsed} ms`);
        const line = t.logs.map((entry) => JSON.parse(entry) as Record<string, unknown>)
          .find((entry) => entry['reqId'] === response.headers['x-request-id'] && entry['code'] === 'mail_unavailable');
        assert.match(String(line?.['detail']), /invitation mail not sent: \S+/);
        assert.equal((await org.users.owner.client.get(`/v1/orgs/${org.orgId}`)).status, 200, 'the rest of the API keeps working');
      } finally {
        await t?.close();
      }
    });
  }
});

/**
 * The answer and the stores agree: an invitation whose mail did not go out leaves no
 * row (nothing pending, nothing to accept) and no `invitation.created` event (which
 * says "mailed"; the chained log could never take it back). Once the relay is back, the
 * same invitation goes through and works.
 */
for (const store of ['sqlite', 'postgres'] as const) {
  test(`an invitation refused for a down SMTP relay leaves no row and no invitation, only an invitation.failed event; re-inviting once it is back works (${store})`, async () => {
    const open = new Resources();
    try {
      // A real relay in an outage: it answers every connection with 421 and hangs up.
      const relay = open.add(await startSmtpSink(null, { down: true }), (sink) => sink.close());
      const t = open.add(await startTestServer({ store, env: { SMTP_URL: `smtp://127.0.0.1:${relay.port}`, RAMPART_INSECURE_SMTP_WITHOUT_TLS: 'true' } }), (s) => s.close());
      const events = captureEvents(t);
      const org = await createOrgWithRoles(t, 'relay');
      const { owner } = org.users;
      const invitee = await signUp(t, 'relay-invitee');
      const db = t.server.services.stores.main.db;
      const invitationsOf = () => db.selectFrom('org_invitations').selectAll().where('org_id', '=', org.orgId).execute();
      const auditActions = async (action: string) => {
        const response = await owner.client.get(`/v1/orgs/${org.orgId}/audit?action=${action}`);
        assert.equal(response.status, 200, response.text);
        return response.body.events as Array<{ target: { id: string } }>;
      };

      const refused = await owner.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: invitee.email, role: 'admin' });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.body.code, 'mail_unavailable');
      assert.deepEqual(await invitationsOf(), [], 'no invitation row for a mail that never left');
      assert.deepEqual(await auditActions('invitation.created'), [], 'the audit log does not claim an invitation');
      assert.ok(!events.some((e) => e.action === 'invitation.created'), 'no invitation.created event, not even rolled back');
      // The failed attempt itself is audited, without the address.
      const failed = await auditActions('invitation.failed') as unknown as Array<{ actor: { id: string }; outcome: string; details: Record<string, unknown> }>;
      assert.deepEqual(failed.map((e) => [e.actor.id, e.outcome, e.details]), [[owner.userId, 'failure', { role: 'admin', reason: 'mail_unavailable' }]]);
      assert.ok(!JSON.stringify(failed).includes(invitee.email));

      assert.equal(relay.messages.length, 0, 'the relay in its outage took no mail');
      relay.down = false;
      const sent = await owner.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: invitee.email, role: 'admin' });
      assert.equal(sent.status, 201, sent.text);
      const mail = await waitFor(() => relay.messages.find((m) => m.to === invitee.email), 'the invitation mail');
      const token = /\/invitations\/accept\?token=([A-Za-z0-9_-]{43})/.exec(mail.body)?.[1];
      assert.ok(token, mail.body);
      const rows = await invitationsOf();
      assert.deepEqual(rows.map((row) => [row.id, row.token_hash, row.accepted_at]), [[sent.body.id, sha256Hex(token), null]], 'one pending invitation: the mailed one');
      assert.deepEqual((await auditActions('invitation.created')).map((e) => e.target.id), [sent.body.id]);

      const accepted = await invitee.client.post('/v1/invitations/accept', { token });
      assert.equal(accepted.status, 200, accepted.text);
      assert.equal(accepted.body.org.role, 'admin');
      const verified = await owner.client.get(`/v1/orgs/${org.orgId}/audit/verify`);
      assert.equal(verified.body.valid, true, 'the chain holds');
    } finally {
      await open.close();
    }
  });
}
