/**
 * Attack: account enumeration through the forgot-password endpoint. If the
 * answer, or its timing, differs between a registered and an unknown address
 * (a database write and an SMTP round trip only for real accounts), an
 * attacker learns who has an account (ASVS V6.3.8). Defence: the endpoint
 * always answers 202 with the same body at once; everything that depends on
 * the account happens off the request path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('forgot-password does not reveal which addresses have accounts', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('same status and body, and similar timing, for known and unknown addresses', async () => {
    const { email } = await signUp(t, 'enum');
    const client = t.client();
    const known: number[] = [];
    const unknown: number[] = [];
    const bodies = new Set<string>();
    for (let i = 0; i < 12; i++) {
      for (const [address, into] of [[email, known], [uniqueEmail('ghost'), unknown]] as const) {
        const started = performance.now();
        const response = await client.post('/v1/password/forgot', { email: address });
        into.push(performance.now() - started);
        assert.equal(response.status, 202);
        bodies.add(response.text);
      }
      await t.server.services.background.settled();
    }
    assert.equal(bodies.size, 1, 'one body for everyone');
    const [k, u] = [median(known), median(unknown)];
    assert.ok(Math.abs(k - u) < Math.max(25, 0.5 * Math.max(k, u)), `medians ${k.toFixed(1)} ms vs ${u.toFixed(1)} ms`);
  });
});
