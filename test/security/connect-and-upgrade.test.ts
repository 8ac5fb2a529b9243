/**
 * Threat: a scanner probing for an open proxy sends `CONNECT host:443`; with no
 * 'connect' listener Node dropped the connection without a word: no status, no
 * problem body, no security headers, unlike every other refusal. A request asking
 * to switch protocols (`Upgrade: websocket`) must likewise get an ordinary answer,
 * never a connection left hanging. Sent over raw sockets, byte for byte, over TLS
 * and in the loopback plain-HTTP mode.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ERRORS } from '../../src/errors.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { parseRawAnswer, rawConversation, rawExchange } from '../helpers/raw-http.js';

function assertRefusalHeaders(headers: Record<string, string>, context: string): void {
  assert.equal(headers['content-type'], 'application/problem+json; charset=utf-8', context);
  assert.equal(headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', context);
  assert.equal(headers['x-content-type-options'], 'nosniff', context);
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/, context);
  assert.equal(headers['cache-control'], 'no-store', context);
}

for (const mode of ['TLS', 'plain HTTP on loopback'] as const) {
  describe(`CONNECT and Upgrade (${mode})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(mode === 'TLS' ? {} : { env: { RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: 'true' } });
    });
    after(async () => {
      await t.close();
    });

    for (const target of ['example.com:443', '127.0.0.1:22', '/v1/session']) {
      test(`CONNECT ${target}: 405 method_not_allowed as a problem body with the security headers, then the server closes the connection`, async () => {
        // Our side stays open: the server must close the connection itself.
        const raw = await rawExchange(t, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Connection: keep-alive\r\n\r\n`);
        const answer = parseRawAnswer(raw);
        assert.equal(answer.status, 405, JSON.stringify(raw));
        assertRefusalHeaders(answer.headers, `CONNECT ${target}`);
        assert.equal(answer.headers['connection'], 'close');
        assert.equal(answer.headers['allow'], '', 'RFC 9110 §15.5.6: a 405 names the allowed methods; for a tunnel, none');
        assert.deepEqual(JSON.parse(answer.text), { type: 'about:blank', title: ERRORS.method_not_allowed.title, status: 405, code: 'method_not_allowed', detail: ERRORS.method_not_allowed.title });
        assert.equal(raw.length, raw.indexOf('\r\n\r\n') + 4 + Number(answer.headers['content-length']), 'nothing after the answer: no tunnel opened');
        assert.doesNotMatch(answer.text, /example|127\.0\.0\.1|session/, 'the target is not echoed');
      });
    }

    test('CONNECT followed at once by tunnel bytes (a TLS ClientHello): the same 405, nothing of the bytes answered', async () => {
      const hello = `\u0016\u0003\u0001\u0002\u0000\u0001${'x'.repeat(4000)}`;
      const raw = await rawExchange(t, `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n${hello}`);
      const answer = parseRawAnswer(raw);
      assert.equal(answer.status, 405, JSON.stringify(raw));
      assert.equal(JSON.parse(answer.text).code, 'method_not_allowed');
      assert.equal(raw.length, raw.indexOf('\r\n\r\n') + 4 + Number(answer.headers['content-length']));
    });

    test('the CONNECT refusal is logged by its code, never with the request\'s headers', async () => {
      const canary = `connect-canary-${Date.now()}`;
      await rawExchange(t, `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic ${canary}\r\n\r\n`);
      assert.ok(t.logs.some((line) => line.includes('"code":"method_not_allowed"') && line.includes('CONNECT')), 'the refusal is in the log');
      assert.ok(!t.logs.join('\n').includes(canary));
    });

    test('the server still answers after CONNECT probes', async () => {
      assert.equal((await t.client().get('/healthz')).status, 200);
    });

    test('Upgrade: websocket gets an ordinary answer (no listener, no switch), with the security headers', async () => {
      const upgrade = 'Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';
      const health = parseRawAnswer(await rawExchange(t, `GET /healthz HTTP/1.1\r\nHost: localhost\r\n${upgrade}\r\n\r\n`));
      assert.equal(health.status, 200);
      assert.deepEqual(JSON.parse(health.text), { status: 'ok' });
      assert.equal(health.headers['upgrade'], undefined, 'no protocol switch');
      assert.equal(health.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
      const session = parseRawAnswer(await rawExchange(t, `GET /v1/session HTTP/1.1\r\nHost: localhost\r\n${upgrade}\r\n\r\n`));
      assert.equal(session.status, 401);
      assertRefusalHeaders(session.headers, 'Upgrade to an authenticated route');
      assert.equal(JSON.parse(session.text).code, 'unauthenticated');
    });

    test('Upgrade: websocket on a kept-alive connection: answered, and the next request on it too', async () => {
      const answers = await rawConversation(t, [
        'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
        'GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      ]);
      assert.equal(answers.length, 2, JSON.stringify(answers));
      assert.equal(parseRawAnswer(answers[0]!).status, 200);
      const next = parseRawAnswer(answers[1]!);
      assert.equal(next.status, 404);
      assert.equal(JSON.parse(next.text).code, 'not_found');
    });
  });
}
