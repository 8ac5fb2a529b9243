/**
 * Anyone who knows an address can ask for its reset link, and each link is a mail
 * to its owner: the per-account request limit (10/min) alone let a stranger send
 * one account 600 mails an hour. Reset mails have an hourly budget per account;
 * past it the answer is still 202 (no enumeration), nothing is sent, and the
 * link already sent stays the valid one (ASVS V2.4.1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

for (const counters of ['memory', 'redis'] as const) {
  describe(`password-reset mail budget (${counters} counters)`, () => {
    const servers: TestServer[] = [];
    after(async () => {
      for (const server of servers) await server.close();
    });

    test('past the hourly budget: 202, no mail, the last link still works, the refusal audited', async () => {
      const env: Record<string, string> = { PASSWORD_RESET_MAILS_PER_HOUR: '2' };
      const prefix = `rampart-test-${process.pid}-${randomBytes(4).toString('hex')}:`;
      if (counters === 'redis') Object.assign(env, { REDIS_URL, REDIS_KEY_PREFIX: prefix });
      const t = await startTestServer({ env });
      servers.push(t);
      const { email, userId } = await signUp(t, 'flooded');
      const resetMails = () => readOutbox(t.dataDir).filter((mail) => mail.to === email && /Reset your/.test(mail.subject));

      const answers = [];
      // Outbox files are named by the (manual) clock's time: tell the mails apart by their tokens.
      const sent: string[][] = [];
      for (let i = 0; i < 5; i++) {
        const before = new Set(resetMails().map(resetTokenFrom));
        answers.push(await t.client().post('/v1/password/forgot', { email }));
        await t.server.services.background.settled();
        sent.push(resetMails().map(resetTokenFrom).filter((token) => !before.has(token)));
      }
      assert.deepEqual(answers.map((answer) => answer.status), [202, 202, 202, 202, 202]);
      assert.equal(new Set(answers.map((answer) => answer.text)).size, 1, 'every answer is the same');
      assert.deepEqual(sent.map((tokens) => tokens.length), [1, 1, 0, 0, 0], 'two mails, then none');
      if (counters === 'redis') {
        // Shared by every instance: the budget's counter lives in Redis, under an HMAC, not the user id.
        const redis = new Redis(REDIS_URL);
        try {
          const keys = await redis.keys(`${prefix}rl:resetmail*`);
          assert.equal(keys.length, 1);
          assert.ok(!keys[0]!.includes(userId));
        } finally {
          redis.disconnect();
        }
      }

      // The refused requests voided nothing: the second link is the valid one.
      const newest = sent[1]![0]!;
      const reset = await t.client().post('/v1/password/reset', { token: newest, password: strongPassword() });
      assert.equal(reset.status, 204);

      const { events } = await t.server.services.audit.list({ userId, action: 'password.reset_requested', limit: 10 });
      assert.deepEqual(events.map((event) => event.outcome).sort(), ['denied', 'denied', 'denied', 'success', 'success']);
      assert.ok(events.filter((event) => event.outcome === 'denied').every((event) => event.details['reason'] === 'reset_mail_budget_spent'));

      // The budget is the account's: another account still gets its mail.
      const other = await signUp(t, 'bystander');
      assert.equal((await t.client().post('/v1/password/forgot', { email: other.email })).status, 202);
      await t.server.services.background.settled();
      assert.equal(readOutbox(t.dataDir).filter((mail) => mail.to === other.email).length, 1);
    });
  });
}

test('when the budget cannot be read (its Redis gone mid-request), no mail is sent and the failure is logged', async () => {
  const t = await startTestServer();
  try {
    const { email } = await signUp(t, 'budget-down');
    t.server.services.passwordReset.setMailBudget({ takeResetMail: async () => { throw new Error('rate-limit store unavailable (account)'); } });
    assert.equal((await t.client().post('/v1/password/forgot', { email })).status, 202);
    await t.server.services.background.settled();
    assert.equal(readOutbox(t.dataDir).filter((mail) => mail.to === email).length, 0);
    assert.ok(t.logs.some((line) => line.includes('background task failed') && line.includes('password-reset-request')));
  } finally {
    await t.close();
  }
});
