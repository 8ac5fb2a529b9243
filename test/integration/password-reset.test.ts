import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { loadTlsMaterial } from '../../src/tls/certificate.js';
import { readOutbox, resetTokenFrom, startSmtpSink, type ReceivedMail } from '../helpers/mail.js';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { Resources } from '../helpers/resources.js';
import { createOrgWithRoles } from '../helpers/orgs.js';

/** Asks for a reset link and returns the token from the newest mail to `email`. */
async function requestResetToken(t: TestServer, email: string, mails: () => ReceivedMail[] = () => readOutbox(t.dataDir)): Promise<string> {
  const resetMails = () => mails().filter((m) => m.to === email && /Reset your/.test(m.subject));
  // Outbox file names start with the (manual) clock's time, so find the new mail by its token.
  const known = new Set(resetMails().map(resetTokenFrom));
  const response = await t.client().post('/v1/password/forgot', { email });
  assert.equal(response.status, 202);
  await t.server.services.background.settled();
  const fresh = resetMails().map(resetTokenFrom).filter((token) => !known.has(token));
  assert.equal(fresh.length, 1, 'one new reset mail was sent');
  return fresh[0]!;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`password reset (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('the forgot answer is identical for known and unknown addresses (no enumeration)', async () => {
      const { email } = await signUp(t, 'forgot');
      const known = await t.client().post('/v1/password/forgot', { email });
      const unknown = await t.client().post('/v1/password/forgot', { email: uniqueEmail('nobody') });
      assert.equal(known.status, 202);
      assert.equal(unknown.status, 202);
      assert.equal(known.text, unknown.text);
      const strip = (headers: Record<string, unknown>) => {
        // The per-address rate-limit counter moves with every request, whoever it is for.
        const { date: _date, 'x-request-id': _id, 'ratelimit-remaining': _remaining, 'ratelimit-reset': _reset, ...rest } = headers;
        return rest;
      };
      assert.deepEqual(strip(known.headers), strip(unknown.headers));
      assert.deepEqual(known.setCookies, []);
    });

    test('the mail carries a 256-bit link under PUBLIC_URL; only its hash is stored', async () => {
      const { email, userId } = await signUp(t, 'reset');
      const token = await requestResetToken(t, email);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
      const mail = readOutbox(t.dataDir).find((m) => m.to === email && m.body.includes(token))!;
      assert.ok(mail.body.includes(`${t.server.services.publicUrl}/reset-password?token=${token}`));
      assert.ok(mail.raw.includes(`/reset-password?token=${token}`), 'the link is plain text in the .eml');
      const rows = await t.server.services.stores.main.db.selectFrom('password_tokens').selectAll().where('user_id', '=', userId).execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.token_hash, sha256Hex(token));
      assert.ok(!JSON.stringify(rows).includes(token), 'the token itself is stored nowhere');
      assert.equal(rows[0]!.expires_at - rows[0]!.created_at, 30 * 60_000, '30 minutes');
      assert.ok(!t.logs.some((line) => line.includes(token)), 'never logged');
    });

    test('reset sets the password, ends every session, signs nobody in; the token is single use', async () => {
      const { client, email, password } = await signUp(t, 'reset');
      const other = t.client();
      await other.post('/v1/login', { email, password });
      const cookies = [client.cookies.get(SESSION_COOKIE)!, other.cookies.get(SESSION_COOKIE)!];
      const token = await requestResetToken(t, email);
      const newPassword = strongPassword();
      const reset = await t.client().post('/v1/password/reset', { token, password: newPassword });
      assert.equal(reset.status, 204);
      assert.deepEqual(reset.setCookies, [], 'a reset never signs the user in (ASVS V6.4.3)');
      for (const cookie of cookies) {
        const stale = await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${cookie}` } });
        assert.equal(stale.status, 401, 'every session ended');
      }
      assert.equal((await t.client().post('/v1/login', { email, password })).status, 401);
      assert.equal((await t.client().post('/v1/login', { email, password: newPassword })).status, 200);
      const again = await t.client().post('/v1/password/reset', { token, password: strongPassword() });
      assert.equal(again.status, 400);
      assert.equal(again.body.code, 'invalid_token', 'a used token is dead');
    });

    test('a token expires after 30 minutes', async () => {
      const { email } = await signUp(t, 'expiry');
      const token = await requestResetToken(t, email);
      t.clock.advance(30 * 60_000);
      const late = await t.client().post('/v1/password/reset', { token, password: strongPassword() });
      assert.equal(late.status, 400);
      assert.equal(late.body.code, 'invalid_token');
      const fresh = await requestResetToken(t, email);
      t.clock.advance(29 * 60_000);
      assert.equal((await t.client().post('/v1/password/reset', { token: fresh, password: strongPassword() })).status, 204, 'valid until then');
    });

    test('a newer request voids the older link', async () => {
      const { email } = await signUp(t, 'voided');
      const first = await requestResetToken(t, email);
      const second = await requestResetToken(t, email);
      assert.notEqual(first, second);
      assert.equal((await t.client().post('/v1/password/reset', { token: first, password: strongPassword() })).body.code, 'invalid_token');
      assert.equal((await t.client().post('/v1/password/reset', { token: second, password: strongPassword() })).status, 204);
    });

    test('any password change voids outstanding links', async () => {
      const { client, email, password } = await signUp(t, 'voided');
      const token = await requestResetToken(t, email);
      assert.equal((await client.post('/v1/me/password', { currentPassword: password, newPassword: strongPassword() })).status, 204);
      assert.equal((await t.client().post('/v1/password/reset', { token, password: strongPassword() })).body.code, 'invalid_token');
    });

    test('policy and history apply; a refused password leaves the link usable', async () => {
      const { email, password } = await signUp(t, 'policy');
      const token = await requestResetToken(t, email);
      const weak = await t.client().post('/v1/password/reset', { token, password: 'short' });
      assert.equal(weak.status, 400);
      assert.equal(weak.body.code, 'weak_password');
      const reused = await t.client().post('/v1/password/reset', { token, password });
      assert.equal(reused.status, 400);
      assert.equal(reused.body.code, 'password_reused');
      assert.equal((await t.client().post('/v1/password/reset', { token, password: strongPassword() })).status, 204);
    });

    test('garbage tokens answer invalid_token; bodies are validated', async () => {
      for (const token of ['x', 'A'.repeat(43), '../../etc/passwd']) {
        const response = await t.client().post('/v1/password/reset', { token, password: strongPassword() });
        assert.equal(response.status, 400);
        assert.equal(response.body.code, 'invalid_token');
      }
      assert.equal((await t.client().post('/v1/password/reset', { token: 'x', password: 'y', extra: 1 })).body.code, 'invalid_request');
      assert.equal((await t.client().post('/v1/password/forgot', { email: 'not-an-address' })).status, 400);
    });
  });
}

describe('reset mail through a real SMTP listener with STARTTLS', () => {
  let t: TestServer;
  let sink: Awaited<ReturnType<typeof startSmtpSink>>;
  let dataDir: string;
  const open = new Resources();
  before(async () => {
    // The listener presents the server's own self-signed certificate; Rampart trusts
    // exactly that certificate (SMTP_CA_FILE) and requires STARTTLS.
    dataDir = open.add(mkdtempSync(join(tmpdir(), 'rampart-smtp-')), (dir) => rmSync(dir, { recursive: true, force: true }));
    const tls = await loadTlsMaterial({ dataDir, certFile: null, keyFile: null });
    sink = open.add(await startSmtpSink({ key: tls.key, cert: tls.cert }), (smtp) => smtp.close());
    t = open.add(await startTestServer({
      dataDir,
      env: { SMTP_URL: `smtp://127.0.0.1:${sink.port}`, SMTP_CA_FILE: tls.certPath },
    }), (server) => server.close());
  });
  after(() => open.close());

  test('the reset link arrives over an encrypted SMTP session and works', async () => {
    const { email } = await signUp(t, 'smtp');
    const token = await requestResetToken(t, email, () => sink.messages);
    const mail = sink.messages.at(-1)!;
    assert.equal(mail.secure, true, 'STARTTLS was used');
    assert.match(mail.raw, /^From: Rampart <no-reply@localhost>/m);
    assert.equal((await t.client().post('/v1/password/reset', { token, password: strongPassword() })).status, 204);
    assert.equal(readOutbox(dataDir).length, 0, 'nothing went to the outbox');
  });

  test('a relay whose certificate no trusted CA signed gets no mail: the invitation answers 503 and nothing is sent (ASVS V12.3.2)', async () => {
    // The same relay, but a server that was not told to trust its certificate (no SMTP_CA_FILE).
    const untrusting = open.add(await startTestServer({ env: { SMTP_URL: `smtp://127.0.0.1:${sink.port}` } }), (server) => server.close());
    const org = await createOrgWithRoles(untrusting, 'untrusted-relay');
    const before = sink.messages.length;
    const invited = await org.users.admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: uniqueEmail('untrusted-relay'), role: 'member' });
    assert.equal(invited.status, 503, invited.text);
    assert.equal(invited.body.code, 'mail_unavailable');
    assert.equal(sink.messages.length, before, 'the relay received nothing');
    const refusal = untrusting.logs.find((line) => line.includes('mail_unavailable'));
    assert.match(String(refusal), /invitation mail not sent: ESOCKET: .*certificate/, 'the log says why');
  });
});
