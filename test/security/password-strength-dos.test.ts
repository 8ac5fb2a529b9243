/**
 * Attack: zxcvbn's matchers are super-linear. A crafted password full of l33t
 * characters ("p4$$w0rd" repeated) takes zxcvbn seconds to score (zxcvbn-ts
 * issue #164); scored on the event loop, a handful of such signups would
 * freeze every other request of the server. Defence: zxcvbn runs on a worker
 * thread with bounded options and a time limit, so the event loop stays free
 * and a pathological password is refused instead of scored forever.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';

describe('password strength scoring cannot freeze the server', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('other requests are answered promptly while crafted passwords are being scored', async () => {
    const crafted = ['p4$$w0rd'.repeat(32), '4@8(6<3{1!|0$5+7%2'.repeat(14), '!1|l'.repeat(64)];
    const signups = crafted.map((password) => t.client().post('/v1/signup', { email: uniqueEmail('dos'), password }));
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      assert.equal((await t.client().get('/healthz')).status, 200);
      latencies.push(performance.now() - started);
    }
    const answers = await Promise.all(signups);
    assert.equal(answers[0]!.status, 400, 'the l33t-repeated password is refused');
    for (const answer of answers) assert.ok(answer.status < 500 || answer.status === 503, `answered without an error (${answer.status})`);
    assert.ok(Math.max(...latencies) < 1000, `health checks stayed fast: ${latencies.map((ms) => ms.toFixed(0)).join(', ')} ms`);
  });
});
