/**
 * Threat: online guessing of second-factor codes.
 *
 * Attack: someone who has the password (phished, reused, stuffed) guesses
 * 6-digit TOTP codes: 10^6 codes, 3 valid at a time. Unthrottled, a few hundred
 * thousand requests break it; with many mfaTokens in parallel, even faster. We
 * cap each mfaToken at 3 attempts (then it dies and the password, with its own
 * argon2 cost and rate limits, is needed again) and each user at 5 consecutive
 * failures, after which every further attempt waits 1, 2, 4 … minutes (at most
 * an hour) and even the right code is refused meanwhile (ASVS V6.6.3, V6.3.1).
 * Step-up with TOTP shares the same counter, so it is no side door.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SecurityEvent } from '../../src/events/security-events.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, nextStep, passwordStep, totpNow } from '../helpers/mfa.js';

function wrongCode(right: string): string {
  return right === '000000' ? '000001' : '000000';
}

describe('second-factor brute force', () => {
  let t: TestServer;
  const events: SecurityEvent[] = [];
  before(async () => {
    t = await startTestServer();
    t.server.services.events.addSink({ record: (event) => void events.push(event) });
  });
  after(async () => {
    await t.close();
  });

  test('a burst of parallel guesses on one mfaToken gets three tries at most', async () => {
    const { client, email, password } = await signUp(t, 'burst');
    const { secret } = await enrollTOTP(t, client, password);
    const { mfaToken } = await passwordStep(t.client(), email, password);
    const bad = wrongCode(totpNow(t, secret));
    const responses = await Promise.all(Array.from({ length: 30 }, () => t.client().post('/v1/login/mfa', { mfaToken, totp: bad })));
    const checked = responses.filter((r) => r.body.code === 'invalid_mfa').length;
    assert.ok(checked <= 3, `${checked} guesses were checked`);
    assert.ok(responses.every((r) => r.status === 401 || r.status === 429));
    const right = await t.client().post('/v1/login/mfa', { mfaToken, totp: totpNow(t, secret) });
    assert.equal(right.body.code, 'mfa_token_expired', 'the spent token dies even for the right code');
  });

  test('five failures lock the user; the right code is refused until the wait is over; the wait doubles', async () => {
    const { client, email, password, userId } = await signUp(t, 'guess');
    const { secret } = await enrollTOTP(t, client, password);
    const guess = async (mfaToken: string, code: string) => t.client().post('/v1/login/mfa', { mfaToken, totp: code });

    let token = (await passwordStep(t.client(), email, password)).mfaToken;
    for (let i = 0; i < 3; i++) assert.equal((await guess(token, wrongCode(totpNow(t, secret)))).body.code, 'invalid_mfa');
    token = (await passwordStep(t.client(), email, password)).mfaToken;
    for (let i = 0; i < 2; i++) assert.equal((await guess(token, wrongCode(totpNow(t, secret)))).body.code, 'invalid_mfa');
    const locked = await guess(token, totpNow(t, secret));
    assert.equal(locked.status, 429);
    assert.equal(locked.body.code, 'rate_limited');
    assert.equal(locked.headers['retry-after'], '60');
    // Step-up is no side door.
    const viaReauth = await client.post('/v1/me/reauth', { totp: totpNow(t, secret) });
    assert.equal(viaReauth.status, 429);
    assert.ok(events.some((e) => e.action === 'mfa.failed' && e.outcome === 'denied' && e.actor.id === userId));

    t.clock.advance(60_000);
    token = (await passwordStep(t.client(), email, password)).mfaToken;
    assert.equal((await guess(token, wrongCode(totpNow(t, secret)))).body.code, 'invalid_mfa', 'one more try after the wait');
    const again = await guess(token, totpNow(t, secret));
    assert.equal(again.status, 429);
    assert.equal(again.headers['retry-after'], '120', 'the wait doubled');
    t.clock.advance(120_000);
    assert.equal((await guess(token, totpNow(t, secret))).status, 200, 'after the wait, the right code works');
    nextStep(t);
    // A success resets the count: five fresh tries.
    token = (await passwordStep(t.client(), email, password)).mfaToken;
    for (let i = 0; i < 3; i++) assert.equal((await guess(token, wrongCode(totpNow(t, secret)))).body.code, 'invalid_mfa');
  });

  test('a wrong recovery code is recorded as such, and a login names the factor that completed it (ASVS V16.3.1)', async () => {
    const { client, email, password, userId } = await signUp(t, 'recovery-events');
    const { secret, recoveryCodes } = await enrollTOTP(t, client, password);
    const { mfaToken } = await passwordStep(t.client(), email, password);
    // Another character of the code's own alphabet: a case change would be the same code
    // (codes are compared case-insensitively), which made this test pass a right code 1 time in 32.
    const wrong = recoveryCodes[0]!.replace(/^./, (c) => (c === 'x' ? 'y' : 'x'));
    assert.equal((await t.client().post('/v1/login/mfa', { mfaToken, recoveryCode: wrong })).body.code, 'invalid_mfa');
    const failed = events.findLast((e) => e.action === 'mfa.failed' && e.actor.id === userId);
    assert.equal(failed?.details?.['method'], 'recovery_code');
    assert.equal(failed?.details?.['stage'], 'login');
    assert.ok(!JSON.stringify(failed).includes(wrong) && !JSON.stringify(failed).includes(recoveryCodes[0]!), 'no code in the event');
    assert.equal((await t.client().post('/v1/login/mfa', { mfaToken, totp: totpNow(t, secret) })).status, 200);
    const succeeded = events.findLast((e) => e.action === 'login.succeeded' && e.actor.id === userId);
    assert.deepEqual(succeeded?.details, { mfa: true, method: 'totp' });
  });

  test('every failure is recorded with its factor type (ASVS V16.3.1)', async () => {
    const failures = events.filter((e) => e.action === 'mfa.failed' && e.outcome === 'failure' && e.details?.['method'] !== 'recovery_code');
    assert.ok(failures.length > 0);
    for (const event of failures) {
      assert.equal(event.details?.['method'], 'totp');
      assert.equal(typeof event.details?.['reason'], 'string');
      assert.ok(!JSON.stringify(event).match(/"[0-9]{6}"/), 'no code in the event');
    }
  });
});
