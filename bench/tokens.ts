/**
 * Token benchmarks for `npm run bench` (bench/run.ts calls `benchTokens`):
 *
 *  - API-token-authenticated request throughput (GET /v1/session with
 *    `Authorization: Bearer rpat_…`: checksum, HMAC, one indexed read, the
 *    throttled last-use write) against the bare Fastify hello-world ceiling
 *    measured in the same run;
 *  - SDK offline access-JWT verifications per second (`RampartVerifier`, JWKS
 *    cached after the first fetch) against raw jose `jwtVerify` with the same
 *    key and the same pinned options, measured in the same process, one after
 *    the other, for the same time.
 */
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { createRampartVerifier } from '../src/sdk/index.js';
import { caFetch } from '../test/helpers/ca-fetch.js';
import { type BenchRow, load, ratio } from './lib.js';
import type { BenchContext } from './run.js';

export async function benchTokens(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const client = ctx.rampart.client();
  const cookie = { cookie: ctx.sessionCookie };
  const session = await client.get('/v1/session', { headers: cookie, noCookies: true });
  if (session.status !== 200) throw new Error(`bench: the session does not work (${session.status})`);
  const csrf = { ...cookie, 'x-csrf-token': session.body.csrfToken as string };

  const created = await client.post('/v1/me/tokens', { name: 'bench', scopes: ['profile:read'] }, { headers: csrf, noCookies: true });
  if (created.status !== 201) throw new Error(`bench: token creation failed (${created.status} ${created.text})`);
  const apiToken = created.body.token as string;

  console.error('# GET /v1/session with an API token…');
  const tokenLoad = await load({ url: `${ctx.rampart.url}/v1/session`, headers: { authorization: `Bearer ${apiToken}` }, connections: 10, durationSeconds: ctx.seconds });
  if (tokenLoad.non2xx > 0) throw new Error(`bench: the API token got ${tokenLoad.non2xx} non-2xx answers`);
  rows.push({
    name: 'GET /v1/session with an API token', value: tokenLoad.requestsPerSecond, unit: 'req/s',
    baselineName: 'Fastify hello-world (same TLS)', baselineValue: ctx.helloWorldRps, ratio: ratio(tokenLoad.requestsPerSecond, ctx.helloWorldRps), target: '>= 0.5',
  });

  const exchanged = await client.post('/v1/token/access', {}, { headers: csrf, noCookies: true });
  if (exchanged.status !== 200) throw new Error(`bench: token exchange failed (${exchanged.status})`);
  const jwt = exchanged.body.accessToken as string;
  const { iss, aud } = decodeJwt(jwt);
  const { kid } = decodeProtectedHeader(jwt);
  const jwk = (await client.get('/.well-known/jwks.json')).body.keys.find((key: { kid: string }) => key.kid === kid);
  const key = await importJWK(jwk, 'EdDSA');
  const pinned = { algorithms: ['EdDSA'], issuer: iss!, audience: aud as string, typ: 'at+jwt', maxTokenAge: '15m' };

  console.error('# raw jose jwtVerify…');
  const raw = await rate(ctx.seconds, () => jwtVerify(jwt, key, pinned));
  const fetch = caFetch(ctx.rampart.ca);
  try {
    const sdk = createRampartVerifier({ issuer: iss!, audience: aud as string, fetch });
    await sdk.verifyAccessToken(jwt);
    console.error('# SDK verifyAccessToken…');
    const viaSdk = await rate(ctx.seconds, () => sdk.verifyAccessToken(jwt));
    rows.push({
      name: 'SDK offline access-JWT verification', value: viaSdk, unit: 'verifications/s',
      baselineName: 'raw jose jwtVerify, same key and checks', baselineValue: raw, ratio: ratio(viaSdk, raw), target: '>= 0.8',
    });
  } finally {
    fetch.close();
  }
  return rows;
}

/** Sequential calls per second for `seconds` (one at a time: verification is CPU-bound and synchronous at heart). */
async function rate(seconds: number, call: () => Promise<unknown>): Promise<number> {
  // Warm up first, so neither side pays for JIT compilation inside its measurement.
  for (let i = 0; i < 500; i++) await call();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let done = 0;
  while (performance.now() < deadline) {
    await call();
    done++;
  }
  return done / ((performance.now() - started) / 1000);
}
