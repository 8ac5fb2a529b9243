/**
 * Threat: malformed input crashes a handler, leaks a stack trace or SQL, or
 * half-writes an account. Property: no body, content type or cookie ever yields
 * a 5xx, every error is an RFC 9457 problem with a stable code, and nothing
 * internal leaks.
 */
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS } from '../../src/errors.js';
import type { Response } from '../helpers/client.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { createOrgWithRoles, stepUp } from '../helpers/orgs.js';

function assertWellFormed(response: LightMyRequestResponse, context: string): void {
  assert.ok(response.statusCode < 500, `${context} → ${response.statusCode} ${response.body}`);
  if (response.statusCode >= 400) {
    assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', context);
    const body = response.json();
    assert.ok(Object.hasOwn(ERRORS, body.code), `${context}: unknown code ${body.code}`);
    assert.equal(body.status, response.statusCode);
    assert.equal(body.type, 'about:blank');
  }
  assert.doesNotMatch(response.body, /\bat .+\.(ts|js):\d+|stack|SQLITE|syntax error at|relation "|node_modules/i, context);
}

const jsonValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ maxLength: 300 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
);

const emailish = fc.oneof(
  fc.emailAddress(),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `${s}@example.com`),
  fc.constantFrom('a@b.c', 'x@y.z\r\nBcc: evil@example.com', 'ａ@ｂ.ｃｏｍ', '@@', `${'a'.repeat(300)}@example.com`, 'A@EXAMPLE.COM', '\u0000@x.io'),
);

/** Bodies per route in the schema-driven walk (FUZZ_BODY_RUNS for a longer local run; 4 × 400 per route passed). */
const BODY_RUNS = Number(process.env.FUZZ_BODY_RUNS ?? 24);

/** Strings a handler might trip on, whatever the schema allows. */
const HOSTILE_STRINGS = ['', ' ', '\u0000', '\u202e', 'e\u0301', '\ud800', '𝒳😀', "'; drop table users; --", '../../etc/passwd', '%00', '\r\nX-Injected: 1',
  'http://127.0.0.1/', 'https://169.254.169.254/latest', 'https://example.com/hook', 'a@b.co', '__proto__', 'constructor', '1e309', 'null'];

interface BodySchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: BodySchema[];
  oneOf?: BodySchema[];
  properties?: Record<string, BodySchema>;
  required?: string[];
  items?: BodySchema;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
}

/**
 * Values for a JSON schema: `hostile` adds wrong types, values just past each bound,
 * missing and extra members; otherwise values of the declared types within the bounds
 * (strings matching the declared pattern where fast-check can generate them), so that
 * many bodies pass validation and reach the handler.
 */
function bodyFor(raw: unknown, hostile: boolean, depth = 0): fc.Arbitrary<unknown> {
  const schema = (raw ?? {}) as BodySchema;
  if (depth > 4) return jsonValue;
  const variants: Array<fc.Arbitrary<unknown>> = [];
  if (schema.const !== undefined) variants.push(fc.constant(schema.const));
  if (Array.isArray(schema.enum) && schema.enum.length > 0) variants.push(fc.constantFrom(...schema.enum));
  for (const sub of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) variants.push(bodyFor(sub, hostile, depth + 1));
  if (variants.length === 0 || hostile) {
    for (const type of [schema.type ?? []].flat()) variants.push(valueOfType(type, schema, hostile, depth));
  }
  if (hostile || variants.length === 0) variants.push(jsonValue);
  return fc.oneof(...variants);
}

function valueOfType(type: string, schema: BodySchema, hostile: boolean, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': {
      const min = schema.minLength ?? 0;
      const max = schema.maxLength ?? 256;
      const strings: Array<fc.Arbitrary<unknown>> = [fc.string({ minLength: min, maxLength: Math.min(max, 48) })];
      if (schema.pattern) {
        try {
          const pattern = new RegExp(schema.pattern, 'u');
          // No filter (it could reject forever): a generated string out of bounds becomes the empty one.
          strings.push(fc.stringMatching(pattern, { size: 'small' }).map((value) => (value.length >= min && value.length <= max ? value : '')));
        } catch {
          // A pattern fast-check cannot generate from: the plain strings stand in.
        }
      }
      if (hostile) strings.push(fc.constantFrom(...HOSTILE_STRINGS, 'x'.repeat(max), 'x'.repeat(max + 1)), fc.string({ unit: 'binary', maxLength: 40 }));
      return fc.oneof(...strings);
    }
    case 'integer':
    case 'number': {
      const min = schema.minimum ?? -1e6;
      const max = schema.maximum ?? 1e6;
      const inRange = type === 'integer' ? fc.integer({ min: Math.max(min, -2_147_483_648), max: Math.min(max, 2_147_483_647) }) : fc.double({ min, max, noNaN: true });
      return hostile ? fc.oneof(inRange, fc.constantFrom(min - 1, max + 1, 0.5, -0, 2 ** 53, -(2 ** 53), 1e308)) : inRange;
    }
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const maxLength = Math.min((schema.maxItems ?? 8) + (hostile ? 2 : 0), 16);
      return fc.array(bodyFor(schema.items, hostile, depth + 1), { maxLength });
    }
    case 'object': {
      const members = Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, sub]) => [name, bodyFor(sub, hostile, depth + 1)]));
      if (!hostile) return fc.record(members, { requiredKeys: (schema.required ?? []).filter((name) => name in members) });
      const loose = fc.record(members, { requiredKeys: [] });
      return fc.oneof(loose, fc.tuple(loose, fc.constantFrom('extra', '__proto__', 'constructor'), jsonValue).map(([value, key, extra]) => ({ ...(value as object), [key]: extra })));
    }
    default:
      return jsonValue;
  }
}


const bodies = fc.oneof(
  fc.record({ email: emailish, password: fc.string({ unit: 'binary', maxLength: 40 }) }, { requiredKeys: [] }),
  fc.record({ email: emailish, password: fc.string({ maxLength: 20 }), name: jsonValue }, { requiredKeys: [] }),
  fc.dictionary(fc.constantFrom('email', 'password', 'name', '__proto__', 'constructor', 'role', 'extra'), jsonValue, { maxKeys: 5 }),
  jsonValue,
);

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`fuzzing signup and login never yields a 5xx (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('random JSON bodies', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/v1/signup', '/v1/login'), bodies, async (url, body) => {
          const response = await t.server.app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
          assertWellFormed(response, `${url} ${JSON.stringify(body).slice(0, 120)}`);
        }),
        { numRuns: 250 },
      );
    });

    test('raw bytes, odd content types and huge bodies', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/v1/signup', '/v1/login', '/v1/logout', '/v1/me/reauth'),
          fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('{', '{"email":', '[]', 'null', '""', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{}}}', '\uFEFF{}')),
          fc.constantFrom('application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', ''),
          async (url, raw, contentType) => {
            const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
            const response = await t.server.app.inject({ method: 'POST', url, payload: raw, headers });
            assertWellFormed(response, `${url} ${contentType} ${JSON.stringify(raw).slice(0, 80)}`);
          },
        ),
        { numRuns: 250 },
      );
      const huge = await t.server.app.inject({ method: 'POST', url: '/v1/login', payload: JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(200_000) }), headers: { 'content-type': 'application/json' } });
      assert.equal(huge.statusCode, 413);
      assert.equal(huge.json().code, 'payload_too_large');
    });

    test('random cookies, CSRF headers and Authorization headers on authenticated routes', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('GET /v1/session', 'POST /v1/logout', 'GET /v1/me/sessions', 'DELETE /v1/me/sessions', 'DELETE /v1/me/sessions/ses_x'),
          fc.string({ maxLength: 120 }),
          fc.string({ maxLength: 60 }),
          fc.option(fc.string({ maxLength: 80 })),
          async (route, cookie, csrf, authorization) => {
            const [method, url] = route.split(' ') as ['GET' | 'POST' | 'DELETE', string];
            const headers: Record<string, string> = { cookie: `__Host-rampart_session=${cookie}`, 'x-csrf-token': csrf };
            if (authorization !== null) headers['authorization'] = authorization;
            try {
              const response = await t.server.app.inject({ method, url, headers });
              assertWellFormed(response, `${route} ${JSON.stringify(headers).slice(0, 120)}`);
            } catch (error) {
              // light-my-request refuses header values Node itself would never send.
              if (!(error instanceof TypeError) || !/header/i.test(error.message)) throw error;
            }
          },
        ),
        { numRuns: 200 },
      );
    });

    test('nothing is half-written: a refused signup leaves no account or profile behind', async () => {
      const count = async () => {
        const main = await t.server.services.stores.main.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        const pii = await t.server.services.stores.pii.db.selectFrom('pii_users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
        return [Number(main.n), Number(pii.n)];
      };
      const [users, profiles] = await count();
      assert.equal(users, profiles, 'every account has exactly one profile');
      for (const body of [{ email: 'weak@example.com', password: 'password' }, { email: 'bad', password: 'x' }, { email: 'x@y.co', password: 'p'.repeat(300) }]) {
        const response = await t.server.app.inject({ method: 'POST', url: '/v1/signup', payload: body });
        assert.equal(response.statusCode, 400);
      }
      assert.deepEqual(await count(), [users, profiles]);
    });
  });
}

/**
 * Threat: a hostile value in a query string or path parameter of any route
 * reaches a handler or a query it was never meant to (a 5xx with the database's
 * error in the log), or a framework answer goes out without our problem body
 * and security headers. The walk drives every registered route as a signed-in,
 * stepped-up org owner over real HTTPS, with values parsers disagree on.
 */
// SQLite and PostgreSQL: a value one store takes may make the other throw (PostgreSQL refuses NUL in text).
for (const store of ['sqlite', 'postgres'] as const) {
  describe(`every route, hostile query strings, path parameters and bodies (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    /** Numbers JavaScript reads as Infinity or NaN, radix and sign tricks, encodings, control and odd unicode. */
    const QUERY_VALUES = ['1e309', '-1e309', 'Infinity', '-Infinity', 'NaN', '1e3', '0x10', '0b1', '-0', '+5', '1.5', '9007199254740993', '',
      '%00', '%ff', '%C0%AE', '%252e%252e%252f', '%0d%0aSet-Cookie:%20a=b', '\u202e', '😀', 'true', 'null', '[]', 'a'.repeat(3000)];
    /** Path parameter values: too long for the router, undecodable, traversal, control characters. */
    const PARAM_VALUES = ['x', 'a'.repeat(64), 'a'.repeat(65), 'a'.repeat(300), '%00', '%ff', '%E0%A4%A', '..', '%2e%2e', '%2F', '%0d%0a', '😀'];
    /** The public documents a cache may keep (the rest is no-store). */
    const PUBLIC_DOCUMENTS = new Set(['GET /security', 'GET /.well-known/security.txt', 'GET /.well-known/jwks.json']);
    /** Routes that would end the walk's session or account. */
    const SKIP = new Set(['DELETE /v1/me', 'POST /v1/logout', 'POST /v1/me/password', 'POST /v1/me/reauth']);

    function assertProblemOrSuccess(response: Response, context: string): void {
      assert.ok(response.status < 500, `${context} → ${response.status} ${response.text.slice(0, 200)}`);
      if (response.status >= 400) {
        assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', `${context} → ${response.status} ${response.text.slice(0, 200)}`);
        assert.ok(Object.hasOwn(ERRORS, response.body.code), `${context}: code ${response.body.code}`);
        assert.equal(response.body.status, response.status, context);
      }
      // Every answer, success or not (ASVS V3.4.1, V3.4.4, V3.4.6), and a body says what it is in which charset (V4.1.1).
      assert.equal(response.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', `${context}: HSTS`);
      assert.equal(response.headers['x-content-type-options'], 'nosniff', `${context}: nosniff`);
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/, `${context}: CSP`);
      if (response.text.length > 0) assert.match(String(response.headers['content-type']), /^[a-z]+\/[a-z0-9.+-]+; charset=utf-8$/, `${context}: content type`);
      // Nothing a credential or personal data flows through may be kept by a cache (ASVS V14.2.2, V14.3.2).
      const publicDocument = PUBLIC_DOCUMENTS.has(context.slice(0, context.indexOf('?') === -1 ? undefined : context.indexOf('?'))) && response.status < 400;
      if (!publicDocument) assert.equal(response.headers['cache-control'], 'no-store', `${context}: cache-control`);
      assert.doesNotMatch(response.text, /\bat .+\.(ts|js):\d+|SQLITE|FST_ERR|is not a valid url/i, context);
    }

    test('no value in any query parameter or path parameter of any route yields a 5xx or a non-problem error', async () => {
      const org = await createOrgWithRoles(t, 'walk');
      const owner = org.users.owner;
      await stepUp(owner);
      const routes = t.server.app.rampart.routes.filter((route) => !SKIP.has(`${route.method} ${route.url}`));
      assert.ok(routes.length > 40, `the walk sees the routes (${routes.length})`);
      assert.ok(routes.filter((route) => route.query.includes('limit')).length >= 3, 'and their query parameters');
      const fill = (url: string, value: string) => url.replace(/:orgId/g, org.orgId).replace(/:[A-Za-z]+/g, value);
      const bodyOf = (method: string) => (method === 'GET' || method === 'DELETE' ? {} : { json: {} });
      for (const route of routes) {
        // Every hostile value in each parameter the route declares; a route without a query schema ignores its query string.
        for (const name of route.query.length > 0 ? [...route.query, '__proto__', 'x'] : ['limit']) {
          for (const value of route.query.length > 0 ? QUERY_VALUES : QUERY_VALUES.slice(0, 3)) {
            const encoded = value.startsWith('%') ? value : encodeURIComponent(value);
            const path = `${fill(route.url, 'x')}?${name}=${encoded}`;
            assertProblemOrSuccess(await owner.client.request(route.method, path, bodyOf(route.method)), `${route.method} ${path.slice(0, 100)}`);
          }
        }
        // Parameter pollution (ASVS V15.3.7): a parameter given twice is refused, never one of the two picked.
        for (const name of route.query) {
          const polluted = await owner.client.request(route.method, `${fill(route.url, 'x')}?${name}=1&${name}=2`, bodyOf(route.method));
          assertProblemOrSuccess(polluted, `${route.method} ${route.url}?${name}=1&${name}=2`);
          assert.equal(polluted.status, 400, `${route.method} ${route.url}?${name}=1&${name}=2`);
        }
        if (!route.url.includes('/:')) continue;
        for (const value of PARAM_VALUES) {
          const path = fill(route.url, value);
          assertProblemOrSuccess(await owner.client.request(route.method, path, bodyOf(route.method)), `${route.method} ${path.slice(0, 100)}`);
        }
      }
      assert.equal((await owner.client.get('/v1/session')).status, 200, 'the walk kept its session');
    });

    test('bodies generated from each route\'s own schema, valid and hostile, never yield a 5xx or a non-problem error', async () => {
      const org = await createOrgWithRoles(t, 'bodies');
      const owner = org.users.owner;
      await stepUp(owner);
      // The policy last: a random policy that validates (an IP allowlist, required MFA) may shut
      // the owner out of the org's other routes, which would then only answer 403.
      const isPolicy = (url: string) => url.endsWith('/policy');
      const routes = t.server.app.rampart.routes
        .filter((route) => route.body !== undefined && !SKIP.has(`${route.method} ${route.url}`))
        .sort((a, b) => Number(isPolicy(a.url)) - Number(isPolicy(b.url)));
      assert.ok(routes.length >= 15, `the walk sees the routes that take a body (${routes.length})`);
      const fill = (url: string) => url.replace(/:orgId/g, org.orgId).replace(/:[A-Za-z]+/g, 'x');
      let reachedHandler = 0;
      for (const route of routes) {
        const path = fill(route.url);
        await fc.assert(
          fc.asyncProperty(fc.oneof(bodyFor(route.body, false), bodyFor(route.body, true)), async (body) => {
            const response = await owner.client.request(route.method, path, { json: body });
            assertProblemOrSuccess(response, `${route.method} ${path} ${JSON.stringify(body).slice(0, 160)}`);
            if (response.status < 400 || !['invalid_request', 'unsupported_media_type'].includes(String(response.body.code))) reachedHandler++;
          }),
          { numRuns: BODY_RUNS },
        );
      }
      // Not only validation errors: a share of the generated bodies passes the schema and reaches the handlers.
      assert.ok(reachedHandler >= routes.length * 3, `bodies past validation: ${reachedHandler}`);
    });
  });
}

/**
 * Threat: a request Node's parser refuses (a header block over the limit, a bad
 * request line, request-smuggling framing) is answered by the framework's default
 * handler, outside every hook: a non-problem body and no HSTS, CSP or nosniff.
 * Sent over a raw TLS socket, byte for byte, as an attacker would.
 */
describe('requests the HTTP parser refuses', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  /** Writes `request` on a fresh TLS connection; resolves with everything the server sent before closing. */
  function raw(request: string): Promise<string> {
    const { port } = new URL(t.url);
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: t.ca!, servername: 'localhost' }, () => socket.end(request));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
    });
  }

  function parse(answer: string): { status: number; headers: Record<string, string>; body: Record<string, unknown> } {
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    const [statusLine = '', ...lines] = head.split('\r\n');
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) as Record<string, unknown> };
  }

  const CASES: Array<[string, string, number, string]> = [
    ['a header block over the limit', `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'request_headers_too_large'],
    ['an unknown method', 'FOO /v1/session HTTP/1.1\r\nHost: localhost\r\n\r\n', 400, 'invalid_request'],
    ['Content-Length with Transfer-Encoding (CL.TE smuggling)', 'POST /v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'invalid_request'],
    ['two different Content-Lengths', 'POST /v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'invalid_request'],
    ['a control character in a header value', 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Evil: a\u0001b\r\n\r\n', 400, 'invalid_request'],
    ['a request line that is not HTTP', '\u0000\u0001garbage\r\n\r\n', 400, 'invalid_request'],
  ];

  for (const [name, request, status, code] of CASES) {
    test(`${name}: ${status} ${code} as a problem body with the security headers, then the connection closes`, async () => {
      const answer = parse(await raw(request));
      assert.equal(answer.status, status, JSON.stringify(answer));
      assert.equal(answer.headers['content-type'], 'application/problem+json; charset=utf-8');
      const { title } = ERRORS[code as keyof typeof ERRORS];
      assert.deepEqual(answer.body, { type: 'about:blank', title, status, code, detail: title });
      assert.equal(answer.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
      assert.equal(answer.headers['x-content-type-options'], 'nosniff');
      assert.match(answer.headers['content-security-policy'] ?? '', /default-src 'none'/);
      assert.equal(answer.headers['cache-control'], 'no-store');
      assert.equal(answer.headers['connection'], 'close');
    });
  }

  test('an HTTP/1.1 request without Host: 400 invalid_request as a problem body with the security headers (RFC 9112 §3.2)', async () => {
    const answer = parse(await raw('GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'));
    assert.equal(answer.status, 400, JSON.stringify(answer));
    assert.equal(answer.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(answer.body['code'], 'invalid_request');
    assert.equal(answer.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    // HTTP/1.0 has no Host requirement.
    assert.equal(parse(await raw('GET /healthz HTTP/1.0\r\n\r\n')).status, 200);
  });

  test('the refusal is logged by its code, never with the request\'s bytes (its cookies and Authorization)', async () => {
    const canary = `parser-canary-${Date.now()}`;
    await raw(`GET /v1/session HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${canary}\r\nCookie: __Host-rampart_session=${canary}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.ok(t.logs.some((line) => line.includes('"code":"request_headers_too_large"')), 'the refusal is in the log');
    assert.ok(!t.logs.join('\n').includes(canary));
  });
});
