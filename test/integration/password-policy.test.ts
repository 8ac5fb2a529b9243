import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { toEffectivePolicy } from '../../src/policy/effective-policy.js';
import { startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { Resources } from '../helpers/resources.js';

const BREACHED = 'harbor-violet-quill-tractor-mango';

function sha1(value: string): string {
  return createHash('sha1').update(value).digest('hex').toUpperCase();
}

describe('password policy at signup (weak_password reasons)', () => {
  let t: TestServer;
  let range: Server;
  let rangeUp = true;
  const open = new Resources();
  before(async () => {
    // A local service speaking the k-anonymity range protocol; it knows one breached password.
    range = createServer((request, response) => {
      if (!rangeUp) return void request.socket.destroy();
      const prefix = /\/range\/([0-9A-F]{5})$/.exec(request.url ?? '')?.[1] ?? '';
      const digest = sha1(BREACHED);
      response.end(digest.startsWith(prefix) ? `${digest.slice(5)}:3861493\r\n${'A'.repeat(35)}:0` : `${'B'.repeat(35)}:0`);
    });
    await new Promise<void>((resolve) => range.listen(0, '127.0.0.1', resolve));
    open.add(range, async (server) => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const url = `http://127.0.0.1:${(range.address() as AddressInfo).port}/range/`;
    t = open.add(await startTestServer({ env: { BREACHED_PASSWORD_API_URL: url, BREACHED_PASSWORD_TIMEOUT_MS: '500', PRODUCT_NAME: 'Rampart' } }), (server) => server.close());
  });
  after(() => open.close());

  async function signup(password: string, email = uniqueEmail('policy'), name = 'Dana Scully') {
    return t.client().post('/v1/signup', { email, password, name });
  }

  test('too short: 400 weak_password with reasons and a human message', async () => {
    const response = await signup('tQ9#vLp2');
    assert.equal(response.status, 400);
    assert.equal(response.body.code, 'weak_password');
    assert.ok(response.body.reasons.includes('too_short'));
    assert.match(response.body.detail, /at least 12 characters/);
    assert.match(response.headers['content-type'] as string, /application\/problem\+json/);
  });

  test('too long: past 256 characters', async () => {
    const response = await signup('violet tractor '.repeat(20));
    assert.equal(response.status, 400);
    assert.deepEqual(response.body.reasons, ['too_long']);
  });

  test('common: a top breached password that meets the length policy (ASVS V6.2.4)', async () => {
    const response = await signup('qwerty123456');
    assert.equal(response.status, 400);
    assert.ok(response.body.reasons.includes('common'), JSON.stringify(response.body));
  });

  test('too weak: a low zxcvbn score', async () => {
    const response = await signup('aaaaaaaaaaaaaaaaaaaa');
    assert.ok(response.body.reasons.includes('too_weak'));
  });

  test('contains_user_info: the product name, the name, the email (ASVS V6.2.11)', async () => {
    for (const [password, name] of [['Rampart-violet-quill-88', 'Dana Scully'], ['violet-Scully-quill-tractor', 'Dana Scully']] as const) {
      const response = await signup(password, uniqueEmail('policy'), name);
      assert.equal(response.status, 400, password);
      assert.ok(response.body.reasons.includes('contains_user_info'), password);
    }
    const email = `mulderfox.${Date.now()}@example.com`;
    const byEmail = await signup('violet-mulderfox-tractor-quill', email);
    assert.ok(byEmail.body.reasons.includes('contains_user_info'));
  });

  test('breached: the range service knows the password (ASVS V6.2.12)', async () => {
    const response = await signup(BREACHED);
    assert.equal(response.status, 400);
    assert.deepEqual(response.body.reasons, ['breached']);
    assert.match(response.body.detail, /data breach/);
  });

  test('the breach check fails open when the service is down: the signup succeeds, a line is logged', async () => {
    rangeUp = false;
    try {
      const response = await signup(BREACHED);
      assert.equal(response.status, 201);
      assert.ok(t.logs.some((line) => line.includes('breached-password check failed open')));
    } finally {
      rangeUp = true;
    }
  });

  test('a long passphrase without character classes and a Unicode one are welcome (ASVS V6.2.5, V6.2.9)', async () => {
    assert.equal((await signup('correct horse battery staple')).status, 201);
    assert.equal((await signup('жёлтый трактор у тихой гавани'.padEnd(64, '!'))).status, 201);
  });

  test('signup follows the effective policy from services.policies, not only the config', async () => {
    const services = t.server.services;
    const original = services.policies;
    const strict = defaultOrgPolicy();
    strict.password.minLength = 40;
    services.policies = { forUser: async () => toEffectivePolicy(strict, ['Rampart'], []) };
    try {
      const response = await signup(strongPassword());
      assert.equal(response.status, 400);
      assert.ok(response.body.reasons.includes('too_short'));
      assert.match(response.body.detail, /at least 40 characters/);
    } finally {
      services.policies = original;
    }
  });
});
