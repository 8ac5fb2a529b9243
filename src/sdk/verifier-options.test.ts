import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RampartVerifier } from './index.js';

test('the issuer and a jwksUrl override must be https, but for this machine (ASVS V12.3.2)', () => {
  assert.throws(() => new RampartVerifier({ issuer: 'http://auth.example.com' }), /the issuer must be an https URL/);
  assert.throws(() => new RampartVerifier({ issuer: 'https://auth.example.com', jwksUrl: 'http://auth.example.com/.well-known/jwks.json' }), /the jwksUrl must be an https URL/);
  assert.doesNotThrow(() => new RampartVerifier({ issuer: 'https://auth.example.com', jwksUrl: 'https://keys.example.com/jwks.json' }));
  assert.doesNotThrow(() => new RampartVerifier({ issuer: 'http://127.0.0.1:8443', jwksUrl: 'http://localhost:8443/.well-known/jwks.json' }));
});
