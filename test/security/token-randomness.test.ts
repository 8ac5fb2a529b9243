/**
 * Threat (ASVS V11.5.1): a secret the API hands out is guessable: a UUID, a
 * counter or timestamp, a short value, or one that repeats. Every bearer secret
 * must come from the CSPRNG with at least 128 bits. By construction each random
 * part has a fixed length over a fixed alphabet, so length × log2(alphabet) bounds
 * its entropy; these tests sample several of each kind over the real API and check
 * the shape, that none is UUID-shaped, that none repeats, and that no character
 * position is the same in every sample (which a timestamp or counter prefix would be).
 *
 * Sampled: session cookie, CSRF token, API token, reset token (outbox mail),
 * recovery codes, invitation token (outbox mail), mfaToken, access-JWT `jti`.
 * Not sampled here: webhook secrets (`whsec_` + 32 random bytes,
 * src/webhooks/webhook-service.ts) need a publicly resolvable destination to be
 * created; their generator is the same `randomToken(32)` as the session cookie.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { readOutbox, resetTokenFrom, waitFor } from '../helpers/mail.js';
import { enrollTOTP, passwordStep } from '../helpers/mfa.js';
import { invitationTokenFor, uniqueSlug } from '../helpers/orgs.js';
import { signUp, startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';

const SAMPLES = 6;
const UUID = /[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}/i;

/**
 * Checks `values` (the random parts) against `shape`, a lower bound on their entropy
 * (`length` characters of an alphabet of `alphabetSize`), distinctness and variation.
 */
function assertRandom(kind: string, values: string[], shape: RegExp, length: number, alphabetSize: number): void {
  assert.equal(values.length, SAMPLES, `${kind}: ${values.length} samples`);
  const bits = length * Math.log2(alphabetSize);
  assert.ok(bits >= 128, `${kind}: ${bits.toFixed(0)} bits by construction`);
  for (const value of values) {
    assert.match(value, shape, `${kind}: shape`);
    assert.equal(value.length, length, `${kind}: length`);
    assert.ok(!UUID.test(value), `${kind}: UUID-shaped`);
  }
  assert.equal(new Set(values).size, values.length, `${kind}: a value repeated`);
  for (let position = 0; position < length; position++) {
    // With ≥ 32 symbols and 6 samples, one position alike in all is a 2^-25 event: a fixed prefix, not chance.
    assert.ok(new Set(values.map((value) => value[position])).size > 1, `${kind}: position ${position} is constant`);
  }
}

describe('bearer secrets carry ≥ 128 random bits and never repeat (ASVS V11.5.1)', () => {
  let t: TestServer;
  const sessions: string[] = [];
  const csrfTokens: string[] = [];
  const users: Array<Awaited<ReturnType<typeof signUp>>> = [];

  before(async () => {
    t = await startTestServer();
    for (let i = 0; i < SAMPLES; i++) {
      const user = await signUp(t, `rand${i}`);
      users.push(user);
      sessions.push(user.client.cookies.get(SESSION_COOKIE)!);
      csrfTokens.push(user.client.csrfToken!);
    }
  });
  after(async () => {
    await t.close();
  });

  test('session cookies: 32 random bytes, base64url (256 bits)', () => {
    assertRandom('session cookie', sessions, /^[A-Za-z0-9_-]+$/, 43, 64);
  });

  test('CSRF tokens: HMAC-SHA256 under a keyring key, base64url (256-bit output, one per session)', () => {
    assertRandom('CSRF token', csrfTokens, /^[A-Za-z0-9_-]+$/, 43, 64);
  });

  test('API tokens: rpat_ + 43 base62 (256 random bits) + 6-character checksum', async () => {
    const tokens: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const response = await users[0]!.client.post('/v1/me/tokens', { name: `rand ${i}`, scopes: ['profile:read'] });
      assert.equal(response.status, 201, response.text);
      assert.match(response.body.token, /^rpat_[0-9A-Za-z]{49}$/);
      tokens.push(response.body.token);
    }
    // The 43-character body holds the random bits; the last 6 are a CRC32 of the rest (public, not counted).
    assertRandom('API token', tokens.map((token) => token.slice(5, 48)), /^[0-9A-Za-z]+$/, 43, 62);
  });

  test('reset tokens (from the mailed link): 32 random bytes, base64url', async () => {
    for (const user of users) {
      assert.equal((await t.client().post('/v1/password/forgot', { email: user.email })).status, 202);
    }
    // The mail goes out through the job queue: wait for each.
    const tokens: string[] = [];
    for (const user of users) {
      const mail = await waitFor(() => readOutbox(t.dataDir).find((m) => m.to === user.email && /reset-password\?token=/.test(m.body)), `reset mail to ${user.email}`);
      tokens.push(resetTokenFrom(mail));
    }
    assertRandom('reset token', tokens, /^[A-Za-z0-9_-]+$/, 43, 64);
  });

  test('invitation tokens (from the mailed link): 32 random bytes, base64url', async () => {
    const owner = users[0]!;
    const created = await owner.client.post('/v1/orgs', { name: 'Randomness Org', slug: uniqueSlug('rand') });
    assert.equal(created.status, 201, created.text);
    const tokens: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const email = uniqueEmail('invitee');
      const response = await owner.client.post(`/v1/orgs/${created.body.org.id}/invitations`, { email, role: 'member' });
      assert.equal(response.status, 201, response.text);
      tokens.push(invitationTokenFor(t, email));
    }
    assertRandom('invitation token', tokens, /^[A-Za-z0-9_-]+$/, 43, 64);
  });

  test('recovery codes: 24 Crockford base32 symbols (120 random bits ≥ ASVS V6.5.2 112), and mfaTokens: 256 bits', async () => {
    const user = users[1]!;
    const { recoveryCodes } = await enrollTOTP(t, user.client, user.password);
    assert.equal(recoveryCodes.length, 10);
    const compact = recoveryCodes.map((code) => code.replaceAll('-', ''));
    for (const code of recoveryCodes) assert.match(code, /^([0-9a-hjkmnp-tv-z]{4}-){5}[0-9a-hjkmnp-tv-z]{4}$/);
    assert.equal(new Set(compact).size, 10, 'recovery codes repeat');
    // Recovery codes are lookup secrets (ASVS V6.5.2 asks ≥ 112 bits); 120 bits, below the 128 of V11.5.1's tokens.
    assert.ok(24 * 5 >= 112);
    // The mfaToken of the password step is a bearer secret for five minutes.
    const mfaTokens: string[] = [];
    for (let i = 0; i < SAMPLES; i++) mfaTokens.push((await passwordStep(t.client(), user.email, user.password)).mfaToken);
    assertRandom('mfaToken', mfaTokens, /^[A-Za-z0-9_-]+$/, 43, 64);
  });

  test('access-JWT ids (jti): 16 random bytes, base64url (128 bits)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const response = await users[2]!.client.post('/v1/token/access', {});
      assert.equal(response.status, 200, response.text);
      ids.push(String(decodeJwt(response.body.accessToken).jti));
    }
    assertRandom('jti', ids, /^[A-Za-z0-9_-]+$/, 22, 64);
  });
});
