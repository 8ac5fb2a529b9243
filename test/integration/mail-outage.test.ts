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
import { SMTP_TIMEOUT_MS } from '../../src/mail/mailer.js';
import { startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { createOrgWithRoles } from '../helpers/orgs.js';

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
