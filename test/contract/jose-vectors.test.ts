import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CompactSign, compactVerify, importJWK, SignJWT, type JWK } from 'jose';
import { createRampartVerifier, RampartAuthError } from '../../src/sdk/index.js';

interface Vector {
  source: string;
  privateJwk: JWK;
  publicJwk: JWK;
  protectedHeader: { alg: string };
  jws: string;
  payload?: string;
  payloadClaims?: Record<string, unknown>;
}

const load = (name: string): Vector => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as Vector;
const ed25519 = load('rfc8037-ed25519.json');
const es256 = load('rfc7515-es256.json');

/**
 * Known-answer tests: the JOSE library we sign and verify with reproduces the
 * RFCs' own examples, and the SDK verifies tokens signed with the RFC keys for
 * both algorithms it accepts (EdDSA, ES256) while refusing the RFC examples
 * themselves (not access tokens: no typ, no claims).
 */
describe('JOSE known-answer vectors (RFC 8037 A.4/A.5, RFC 7515 A.3)', () => {
  test('RFC 8037 A.4: Ed25519 signing is deterministic and reproduces the RFC signature', async () => {
    assert.match(ed25519.source, /RFC 8037/);
    const signed = await new CompactSign(new TextEncoder().encode(ed25519.payload)).setProtectedHeader(ed25519.protectedHeader).sign(await importJWK(ed25519.privateJwk, 'EdDSA'));
    assert.equal(signed, ed25519.jws);
  });

  test('RFC 8037 A.5: the RFC JWS verifies; one flipped bit does not', async () => {
    const key = await importJWK(ed25519.publicJwk, 'EdDSA');
    const { payload, protectedHeader } = await compactVerify(ed25519.jws, key, { algorithms: ['EdDSA'] });
    assert.equal(new TextDecoder().decode(payload), ed25519.payload);
    assert.deepEqual(protectedHeader, ed25519.protectedHeader);
    const [h, p, s] = ed25519.jws.split('.');
    const bytes = Buffer.from(s!, 'base64url');
    bytes[63] = bytes[63]! ^ 0x01;
    await assert.rejects(compactVerify(`${h}.${p}.${bytes.toString('base64url')}`, key, { algorithms: ['EdDSA'] }));
  });

  test('RFC 7515 A.3: the ES256 example verifies with the RFC public key', async () => {
    assert.match(es256.source, /RFC 7515/);
    const { payload } = await compactVerify(es256.jws, await importJWK(es256.publicJwk, 'ES256'), { algorithms: ['ES256'] });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), es256.payloadClaims);
    await assert.rejects(compactVerify(es256.jws, await importJWK(es256.publicJwk, 'ES256'), { algorithms: ['EdDSA'] }), 'the algorithm allowlist is enforced');
  });

  describe('the SDK with the RFC keys in a JWKS', () => {
    let server: Server;
    let issuer: string;
    before(async () => {
      server = createServer((_request, response) => {
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ keys: [{ ...ed25519.publicJwk, kid: 'rfc8037', alg: 'EdDSA', use: 'sig' }, { ...es256.publicJwk, kid: 'rfc7515', alg: 'ES256', use: 'sig' }] }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      server.close();
    });

    test('EdDSA and ES256 access tokens signed with the RFC keys verify; the RFC examples themselves do not', async () => {
      const sdk = createRampartVerifier({ issuer });
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: issuer, aud: `${issuer}/v1`, sub: 'usr_vector', sid: 'ses_vector', scope: 'profile:read', iat: now, exp: now + 300, jti: 'vector' };
      for (const [vector, alg, kid] of [[ed25519, 'EdDSA', 'rfc8037'], [es256, 'ES256', 'rfc7515']] as const) {
        const token = await new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(await importJWK(vector.privateJwk, alg));
        const caller = await sdk.verify(token);
        assert.equal(caller.userId, 'usr_vector');
        assert.deepEqual(caller.scopes, ['profile:read']);
        await assert.rejects(sdk.verify(vector.jws), RampartAuthError);
      }
    });
  });
});
