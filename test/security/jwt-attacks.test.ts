/**
 * Threat: forged or replayed access JWTs (ASVS V9.1.1-V9.1.3, V9.2.1-V9.2.4).
 * An attacker who can read the JWKS — everyone can — tries the classic
 * attacks on JWT verifiers: `alg: none`; re-signing with HS256 using the
 * public key as the HMAC secret (RS/ES/EdDSA → HS key confusion); a key of
 * their own embedded in the header (`jwk`) or named by URL (`jku`, `x5u`,
 * which must never be fetched: a loopback listener counts requests); unknown
 * or path-like `kid`s; and, with tokens our own key did sign, every claim
 * that must be pinned: expired, not yet valid, another issuer or audience,
 * another `typ`, a tampered payload, a stripped signature. Each forged token
 * is presented to the server (as a bearer and to introspection) and to the SDK;
 * every one must be refused. A control proves the genuine token passes all three,
 * so a refusal is the attack's, not the harness's.
 */
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { createRampartVerifier, RampartAuthError, type RampartVerifier } from '../../src/sdk/index.js';
import { caFetch } from '../helpers/ca-fetch.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { enrollTOTP, passwordStep } from '../helpers/mfa.js';
import { Resources } from '../helpers/resources.js';

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('JWT attacks are refused by the server, introspection and the SDK', () => {
  let t: TestServer;
  let owner: { client: TestClient; userId: string };
  let anon: TestClient;
  let introspector: string;
  let sdk: RampartVerifier;
  let fetcher: ReturnType<typeof caFetch>;
  let genuine: string;
  let attackerHits = 0;
  let attackerServer: Server;
  let attackerUrl: string;
  const attacker = generateKeyPairSync('ed25519');
  const attackerJwk = { ...(attacker.publicKey.export({ format: 'jwk' }) as JsonWebKey), kid: 'attacker', alg: 'EdDSA', use: 'sig' };

  const open = new Resources();
  before(async () => {
    t = open.add(await startTestServer(), (server) => server.close());
    owner = await signUp(t, 'jwtattack');
    anon = t.client();
    introspector = (await owner.client.post('/v1/me/tokens', { name: 'backend', scopes: ['introspect'] })).body.token;
    fetcher = open.add(caFetch(t.ca!), (f) => f.close());
    sdk = createRampartVerifier({ issuer: t.server.services.publicUrl, introspectionToken: introspector, fetch: fetcher, now: () => t.clock.now(), jwksRefetchFloorMs: 0 });
    genuine = (await owner.client.post('/v1/token/access', {})).body.accessToken;
    attackerServer = createServer((_request, response) => {
      attackerHits++;
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [attackerJwk] }));
    });
    await new Promise<void>((resolve) => attackerServer.listen(0, '127.0.0.1', resolve));
    open.add(attackerServer, (server) => server.close());
    attackerUrl = `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}/jwks.json`;
  });
  after(() => open.close());

  const acceptedByServer = async (token: string) => (await anon.get('/v1/session', { headers: { authorization: `Bearer ${token}` }, noCookies: true })).status === 200;
  const activeInIntrospection = async (token: string) =>
    (await anon.post('/v1/introspect', { token }, { headers: { authorization: `Bearer ${introspector}` }, noCookies: true })).body.active === true;
  const acceptedBySdk = async (token: string) => {
    try {
      await sdk.verifyAccessToken(token);
      return true;
    } catch (error) {
      assert.ok(error instanceof RampartAuthError && error.code === 'invalid_token', `unexpected SDK failure ${String(error)}`);
      return false;
    }
  };
  const assertRefused = async (token: string, label: string, where: { sdk?: boolean } = {}) => {
    assert.equal(await acceptedByServer(token), false, `server accepted: ${label}`);
    assert.equal(await activeInIntrospection(token), false, `introspection said active: ${label}`);
    if (where.sdk !== false) assert.equal(await acceptedBySdk(token), false, `SDK accepted: ${label}`);
  };
  /** A token signed by the server's real current key, with claims and header changed. */
  const signedByUs = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const { kid, privateKey } = await t.server.services.signingKeys.signingKey();
    const payload = { ...decodeJwt(genuine), ...claims };
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete payload[name];
    const protectedHeader = { alg: 'EdDSA', kid, typ: 'at+jwt', ...header } as Record<string, unknown>;
    for (const [name, value] of Object.entries(header)) if (value === undefined) delete protectedHeader[name];
    return new SignJWT(payload).setProtectedHeader(protectedHeader as never).sign(privateKey);
  };
  const nowSeconds = () => Math.floor(t.clock.now() / 1000);

  test('control: the genuine token, and one re-signed unchanged by our key, pass everywhere', async () => {
    for (const token of [genuine, await signedByUs({})]) {
      assert.equal(await acceptedByServer(token), true);
      assert.equal(await activeInIntrospection(token), true);
      assert.equal(await acceptedBySdk(token), true);
    }
  });

  test('alg: none (unsigned), and a stripped signature', async () => {
    const [header, payload] = genuine.split('.');
    const { kid } = decodeProtectedHeader(genuine);
    for (const alg of ['none', 'None', 'NONE']) {
      await assertRefused(`${b64({ alg, typ: 'at+jwt', kid })}.${payload}.`, `alg ${alg}`);
    }
    await assertRefused(`${header}.${payload}.`, 'signature stripped');
  });

  test('HS256 signed with the public key as the HMAC secret (key confusion)', async () => {
    const { kid } = decodeProtectedHeader(genuine);
    const jwk = (await anon.get('/.well-known/jwks.json')).body.keys.find((key: { kid: string }) => key.kid === kid);
    const pem = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const secrets = [Buffer.from(jwk.x, 'base64url'), Buffer.from(JSON.stringify(jwk)), Buffer.from(String(pem)), Buffer.from(jwk.x)];
    for (const alg of ['HS256', 'HS512']) {
      for (const secret of secrets) {
        const input = `${b64({ alg, typ: 'at+jwt', kid })}.${genuine.split('.')[1]}`;
        const signature = createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(input).digest('base64url');
        await assertRefused(`${input}.${signature}`, `${alg} with the public key`);
      }
    }
  });

  test('a key embedded in the header (jwk, x5c) or named by URL (jku, x5u) is never used or fetched', async () => {
    const claims = decodeJwt(genuine);
    const { kid } = decodeProtectedHeader(genuine);
    const forge = (header: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...header } as never).sign(attacker.privateKey);
    await assertRefused(await forge({ jwk: { kty: attackerJwk.kty, crv: attackerJwk.crv, x: attackerJwk.x } }), 'embedded jwk');
    await assertRefused(await forge({ kid, jwk: { kty: attackerJwk.kty, crv: attackerJwk.crv, x: attackerJwk.x } }), 'embedded jwk with our kid');
    await assertRefused(await forge({ kid: 'attacker', jku: attackerUrl }), 'jku to a loopback listener');
    await assertRefused(await forge({ kid, jku: attackerUrl }), 'jku with our kid');
    await assertRefused(await forge({ kid: 'attacker', x5u: attackerUrl }), 'x5u to a loopback listener');
    // A certificate chain embedded in the header (x5c): refused like an embedded jwk.
    await assertRefused(await forge({ kid, x5c: ['MIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGUgb2YgdGhlIGF0dGFja2Vy'] }), 'embedded x5c with our kid');
    // Our own key plus a jku header: refused outright, not merely ignored.
    await assertRefused(await signedByUs({}, { jku: attackerUrl }), 'our signature with a jku header');
    assert.equal(attackerHits, 0, 'the attacker listener got no request');
  });

  test('unknown, path-like or empty kid', async () => {
    const claims = decodeJwt(genuine);
    for (const kid of ['attacker', '../../../../etc/passwd', '', 'x'.repeat(200), "' OR 1=1 --"]) {
      await assertRefused(await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(attacker.privateKey), `attacker key, kid ${kid.slice(0, 20)}`);
    }
    await assertRefused(await signedByUs({}, { kid: 'not-a-key-of-ours' }), 'our key under an unknown kid');
    await assertRefused(await signedByUs({}, { kid: undefined }), 'no kid');
    assert.equal(attackerHits, 0);
  });

  test('expired, not yet valid, issued in the future', async () => {
    const now = nowSeconds();
    await assertRefused(await signedByUs({ iat: now - 700, exp: now - 60 }), 'expired');
    await assertRefused(await signedByUs({ nbf: now + 120 }), 'not yet valid (nbf)');
    await assertRefused(await signedByUs({ iat: now + 600, exp: now + 1200 }), 'issued in the future (iat)');
    await assertRefused(await signedByUs({ exp: undefined }), 'no exp');
    // A genuine token, once its time is up.
    const token = (await owner.client.post('/v1/token/access', {})).body.accessToken;
    t.clock.advance(600_000 + 6_000);
    await assertRefused(token, 'genuine token past exp');
  });

  test('another issuer, another audience, another typ', async () => {
    await assertRefused(await signedByUs({ iss: 'https://evil.example' }), 'foreign iss');
    await assertRefused(await signedByUs({ iss: undefined }), 'no iss');
    await assertRefused(await signedByUs({ aud: 'https://other-service.example' }), 'aud of another service');
    await assertRefused(await signedByUs({ aud: undefined }), 'no aud');
    for (const typ of ['JWT', 'id_token+jwt', 'application/at+jwt+evil']) await assertRefused(await signedByUs({}, { typ }), `typ ${typ}`);
    await assertRefused(await signedByUs({}, { typ: undefined }), 'no typ');
  });

  test('tampered payload with the signature kept', async () => {
    const [header, payload, signature] = genuine.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const other = await signUp(t, 'victim');
    for (const change of [{ scope: `${claims.scope} org:admin` }, { sub: other.userId }, { exp: claims.exp + 3600 }, { sid: 'ses_other' }]) {
      await assertRefused(`${header}.${b64({ ...claims, ...change })}.${signature}`, `tampered ${Object.keys(change)[0]}`);
    }
    // One flipped bit in the signature.
    const bytes = Buffer.from(signature!, 'base64url');
    bytes[0] = bytes[0]! ^ 1;
    await assertRefused(`${header}.${payload}.${bytes.toString('base64url')}`, 'flipped signature bit');
  });

  test('signed by us but bound to nothing, or to another user\'s session: refused by the server', async () => {
    await assertRefused(await signedByUs({ sid: undefined }), 'neither sid nor tid');
    const other = await signUp(t, 'other');
    const otherSid = (await other.client.get('/v1/session')).body.session.id;
    // Only the server can tell the session is not this subject's (the SDK verifies offline).
    await assertRefused(await signedByUs({ sid: otherSid }), 'sid of another user', { sdk: false });
  });

  test('our other secrets are no access credential: a session secret, an mfaToken, a reset link (ASVS V9.2.2)', async () => {
    const user = await signUp(t, 'othertokens');
    await enrollTOTP(t, user.client, user.password);
    const sessionSecret = user.client.cookies.get(SESSION_COOKIE)!;
    const { mfaToken } = await passwordStep(t.client(), user.email, user.password);
    await t.client().post('/v1/password/forgot', { email: user.email });
    await t.server.services.background.settled();
    const resetToken = resetTokenFrom(readOutbox(t.dataDir).find((mail) => mail.to === user.email && /Reset/.test(mail.subject))!);
    for (const [label, token] of [['session secret', sessionSecret], ['mfaToken', mfaToken], ['reset token', resetToken]] as const) {
      await assertRefused(token, `${label} as a bearer`, { sdk: false });
    }
    for (const [label, token] of [['mfaToken', mfaToken], ['reset token', resetToken], ['access JWT', genuine]] as const) {
      assert.equal((await anon.get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${token}` } })).status, 401, `${label} as the session cookie`);
    }
    assert.equal((await anon.get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${sessionSecret}` } })).status, 200, 'control: the session secret is a cookie');
  });
});
