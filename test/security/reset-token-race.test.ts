/**
 * Attack: a reset token is single use, but a check-then-write redemption lets
 * several requests that arrive together all see the token as valid and all
 * set a password (a "limit overrun" race; OWASP A06:2025). An attacker who
 * intercepted a link, or a double-submitting client, could then end with a
 * password the user did not choose. Defence: redemption first claims the
 * token with one atomic conditional update and deletes it in the transaction
 * that sets the password, so exactly one of N parallel redemptions succeeds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`parallel redemptions of one reset token (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('20 parallel redemptions: exactly one succeeds, and its password is the one in force', async () => {
      const { email } = await signUp(t, 'race');
      assert.equal((await t.client().post('/v1/password/forgot', { email })).status, 202);
      await t.server.services.background.settled();
      const token = resetTokenFrom(readOutbox(t.dataDir).find((mail) => mail.to === email)!);
      const passwords = Array.from({ length: 20 }, () => strongPassword());
      const answers = await Promise.all(passwords.map((password) => t.client().post('/v1/password/reset', { token, password })));
      const winners = answers.flatMap((answer, index) => (answer.status === 204 ? [index] : []));
      assert.equal(winners.length, 1, `statuses: ${answers.map((a) => a.status).join(',')}`);
      for (const answer of answers) if (answer.status !== 204) assert.equal(answer.body.code, 'invalid_token');
      assert.equal((await t.client().post('/v1/login', { email, password: passwords[winners[0]!] })).status, 200);
    });
  });
}
