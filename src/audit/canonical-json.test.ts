import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, jsonNormalize } from './canonical-json.js';
import { type AuditEventBody, chainHash, GENESIS_HASH } from './chain.js';

test('canonical JSON sorts members at every depth and adds no whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: -0.5 } }), '{"a":{"c":-0.5,"d":[true,null,"x"]},"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: 'é\n"' }), '{"b":"é\\n\\""}');
  assert.throws(() => canonicalJson({ a: Number.NaN }), TypeError);
  assert.throws(() => canonicalJson({ a: 1n }), TypeError);
});

test('canonical JSON is stable through a JSON round trip and ignores member order', () => {
  fc.assert(fc.property(fc.jsonValue(), (value) => {
    const normalized = jsonNormalize(value);
    const text = canonicalJson(normalized);
    assert.equal(canonicalJson(JSON.parse(text)), text);
    assert.deepEqual(JSON.parse(text), normalized);
    if (normalized && typeof normalized === 'object' && !Array.isArray(normalized)) {
      const reversed = Object.fromEntries(Object.entries(normalized).reverse());
      assert.equal(canonicalJson(reversed), text);
    }
  }), { numRuns: 300 });
});

test('the chain hash is SHA-256 over prevHash then the canonical event, so anyone can recompute it', () => {
  const body: AuditEventBody = {
    id: 'evt_1', seq: 1, time: '2026-01-01T00:00:00.000Z', orgId: null, actor: { type: 'user', id: 'usr_1' },
    action: 'login.succeeded', target: { type: 'session', id: 'ses_1' }, ip: '127.0.0.1', userAgent: null,
    outcome: 'success', details: { mfa: false }, requestId: null,
  };
  const expected = createHash('sha256').update(GENESIS_HASH + canonicalJson(body)).digest('hex');
  assert.equal(chainHash(GENESIS_HASH, body), expected);
  assert.notEqual(chainHash(GENESIS_HASH, { ...body, outcome: 'failure' }), expected, 'any change of content changes the hash');
  assert.notEqual(chainHash('f'.repeat(64), body), expected, 'the hash depends on the previous link');
});
