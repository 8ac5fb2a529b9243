import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { callerOf, createRampartVerifier, RampartAuthError, type RampartVerifier, type RampartVerifierOptions } from '../../src/sdk/index.js';
import { caFetch } from '../helpers/ca-fetch.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

describe('rampart/sdk against a real server', () => {
  let t: TestServer;
  let owner: { client: TestClient; password: string; userId: string; email: string };
  let introspectionToken: string;
  const fetches: Array<ReturnType<typeof caFetch>> = [];

  const verifier = (options: Partial<RampartVerifierOptions> = {}): { sdk: RampartVerifier; calls: string[] } => {
    const fetch = caFetch(t.ca!);
    fetches.push(fetch);
    return { sdk: createRampartVerifier({ issuer: t.server.services.publicUrl, introspectionToken, fetch, ...options }), calls: fetch.calls };
  };
  const refusedWith = (code: string) => (error: unknown) => error instanceof RampartAuthError && error.code === code;
  const jwt = async (scopes?: string[]) => (await owner.client.post('/v1/token/access', scopes ? { scopes } : {})).body.accessToken as string;

  before(async () => {
    t = await startTestServer();
    owner = await signUp(t, 'sdk');
    introspectionToken = (await owner.client.post('/v1/me/tokens', { name: 'backend', scopes: ['introspect'] })).body.token;
  });
  after(async () => {
    for (const fetch of fetches) fetch.close();
    await t.close();
  });

  test('access JWTs verify offline: one JWKS fetch for many tokens, no introspection', async () => {
    const { sdk, calls } = verifier();
    const token = await jwt();
    const caller = await sdk.verify(token);
    assert.equal(caller.userId, owner.userId);
    assert.equal(caller.tokenType, 'access_token');
    assert.deepEqual(caller.scopes, ['profile:read', 'org:read', 'audit:read']);
    assert.equal(caller.sessionId, (await owner.client.get('/v1/session')).body.session.id);
    assert.equal(caller.orgId, null);
    for (let i = 0; i < 5; i++) await sdk.verify(await jwt());
    assert.deepEqual(calls, ['/.well-known/jwks.json']);
  });

  test('an unknown kid triggers a refetch, but never within the floor', async () => {
    const eager = verifier({ jwksRefetchFloorMs: 0 });
    const patient = verifier({ jwksRefetchFloorMs: 60_000 });
    await eager.sdk.verify(await jwt());
    await patient.sdk.verify(await jwt());
    await t.server.services.signingKeys.rotate('manual');
    const rotated = await jwt();
    assert.equal((await eager.sdk.verify(rotated)).userId, owner.userId);
    assert.deepEqual(eager.calls, ['/.well-known/jwks.json', '/.well-known/jwks.json'], 'one refetch for the new kid');
    await assert.rejects(patient.sdk.verify(rotated), refusedWith('invalid_token'));
    assert.deepEqual(patient.calls, ['/.well-known/jwks.json'], 'no refetch inside the floor');
  });

  test('API tokens verify through introspection with a short cache; a bad checksum costs no call', async () => {
    const created = (await owner.client.post('/v1/me/tokens', { name: 'app', scopes: ['profile:read'] })).body;
    const cached = verifier({ introspectionCacheMs: 60_000 });
    const uncached = verifier({ introspectionCacheMs: 0 });
    const caller = await cached.sdk.verify(created.token);
    assert.deepEqual({ ...caller, expiresAt: caller.expiresAt?.toISOString() }, {
      userId: owner.userId, tokenType: 'api_token', scopes: ['profile:read'], orgId: null, sessionId: null, tokenId: created.id,
      expiresAt: new Date(Math.floor(Date.parse(created.expiresAt) / 1000) * 1000).toISOString(),
    });
    await cached.sdk.verify(created.token);
    assert.deepEqual(cached.calls, ['/v1/introspect'], 'the second check came from the cache');
    const typo = created.token.slice(0, -1) + (created.token.endsWith('A') ? 'B' : 'A');
    await assert.rejects(cached.sdk.verify(typo), refusedWith('invalid_token'));
    assert.deepEqual(cached.calls, ['/v1/introspect']);

    await uncached.sdk.verify(created.token);
    assert.equal((await owner.client.delete(`/v1/me/tokens/${created.id}`)).status, 204);
    await assert.rejects(uncached.sdk.verify(created.token), refusedWith('invalid_token'), 'without a cache, revocation shows at once');
    assert.equal((await cached.sdk.verify(created.token)).userId, owner.userId, 'with a cache, a revoked token lives on for at most the cache period (documented)');
  });

  test('checkAccessTokenRevocation ends a JWT with its session', async () => {
    const second = t.client();
    await second.post('/v1/login', { email: owner.email, password: owner.password });
    const token = (await second.post('/v1/token/access', {})).body.accessToken;
    const { sdk } = verifier({ checkAccessTokenRevocation: true, introspectionCacheMs: 0 });
    const offline = verifier().sdk;
    assert.equal((await sdk.verify(token)).userId, owner.userId);
    await second.post('/v1/logout');
    await assert.rejects(sdk.verify(token), refusedWith('invalid_token'));
    assert.equal((await offline.verify(token)).userId, owner.userId, 'offline verification cannot see a logout (≤ TTL)');
  });

  test('a wrong introspection token fails closed with 503, never as a valid caller', async () => {
    const created = (await owner.client.post('/v1/me/tokens', { name: 'x', scopes: ['profile:read'] })).body;
    const { sdk } = verifier({ introspectionToken: created.token });
    await assert.rejects(sdk.verify(created.token), (error: unknown) => error instanceof RampartAuthError && error.status === 503);
  });

  test('Fastify middleware: sets the caller; 401/403 as problem bodies with WWW-Authenticate', async () => {
    const { sdk } = verifier();
    const app = Fastify();
    app.get('/orders', { onRequest: sdk.fastify({ scope: 'profile:read' }) }, async (request) => ({ userId: callerOf(request)?.userId }));
    app.get('/admin', { onRequest: sdk.fastify({ scope: 'org:admin' }) }, async () => ({ ok: true }));
    const token = await jwt();
    const ok = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { userId: owner.userId });
    const missing = await app.inject({ url: '/orders' });
    assert.equal(missing.statusCode, 401);
    assert.match(String(missing.headers['content-type']), /^application\/problem\+json/);
    assert.deepEqual(missing.json(), { type: 'about:blank', title: 'Authentication is required', status: 401, code: 'unauthenticated', detail: 'Authentication is required' });
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="rampart"');
    const bad = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${token.slice(0, -4)}AAAA` } });
    assert.equal(bad.statusCode, 401);
    assert.equal(bad.json().code, 'invalid_token');
    const forbidden = await app.inject({ url: '/admin', headers: { authorization: `Bearer ${token}` } });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().code, 'insufficient_scope');
    assert.match(String(forbidden.headers['www-authenticate']), /error="insufficient_scope", scope="org:admin"/);
    await app.close();
  });

  test('Express middleware: the same answers', async () => {
    const { sdk } = verifier();
    const app = express();
    app.get('/orders', sdk.express({ scope: 'profile:read' }), (req, res) => {
      res.json({ userId: callerOf(req)?.userId, tokenType: callerOf(req)?.tokenType });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as AddressInfo).port;
    const get = (authorization?: string) => new Promise<{ status: number; type: string; body: any }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/orders', headers: authorization ? { authorization } : {} }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end();
    });
    try {
      const apiToken = (await owner.client.post('/v1/me/tokens', { name: 'express', scopes: ['profile:read'] })).body.token;
      const ok = await get(`Bearer ${apiToken}`);
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.body, { userId: owner.userId, tokenType: 'api_token' });
      assert.equal((await get(`Bearer ${await jwt()}`)).status, 200);
      const missing = await get();
      assert.equal(missing.status, 401);
      assert.match(missing.type, /^application\/problem\+json/);
      const forbidden = await get(`Bearer ${await jwt(['org:read'])}`);
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.body.code, 'insufficient_scope');
      assert.equal((await get('Basic abc')).status, 401);
    } finally {
      server.close();
    }
  });
});
