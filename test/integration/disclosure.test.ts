import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/harness.js';

describe('published security page and security.txt', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { PRODUCT_NAME: 'Acme & "Cloud"', SECURITY_CONTACT: 'mailto:psirt@acme.example' } });
  });
  after(async () => {
    await t.close();
  });

  test('security.txt follows RFC 9116: Contact, a future Expires under a year, served as UTF-8 text over HTTPS', async () => {
    const response = await t.client().get('/.well-known/security.txt');
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(response.text, /^Contact: mailto:psirt@acme\.example$/m);
    const expires = Date.parse(/^Expires: (.+)$/m.exec(response.text)![1]!);
    assert.ok(expires > t.clock.now() && expires < t.clock.now() + 365 * 86_400_000);
    assert.match(response.text, /^Policy: https:\/\/localhost:\d+\/security$/m);
    assert.match(response.text, /^Canonical: https:\/\/localhost:\d+\/\.well-known\/security\.txt$/m);
  });

  test('the security page lists the controls from the live configuration, escaped, under a strict CSP', async () => {
    const response = await t.client().get('/security');
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(response.text, /Security at Acme &amp; &quot;Cloud&quot;/);
    assert.ok(!response.text.includes('Acme & "Cloud"'), 'configuration values are HTML-escaped');
    assert.match(response.text, /At least 12 characters/);
    assert.match(response.text, /60 minutes of inactivity and 12 hours/);
    assert.match(response.text, /psirt@acme\.example/);
    assert.doesNotMatch(response.text, /<script/i);
    assert.doesNotMatch(response.text, /master\.key|\/tmp\/|data-dir/);
    const csp = String(response.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
  });
});
