import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';
import { startSmtpSink, waitFor } from '../helpers/mail.js';
import { createOrgWithRoles, stepUp } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const from = (address: string, agent = FIREFOX) => ({ headers: { 'x-forwarded-for': address, 'user-agent': agent } });

type Feed = Array<{ action: string; ip: string | null; userAgent: string | null; details: Record<string, unknown> }>;

describe('alerts', () => {
  let t: TestServer;
  let smtp: Awaited<ReturnType<typeof startSmtpSink>>;
  const open = new Resources();
  before(async () => {
    smtp = open.add(await startSmtpSink(null), (sink) => sink.close());
    t = open.add(await startTestServer({
      env: {
        TRUSTED_PROXIES: '127.0.0.1/32', SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, RAMPART_INSECURE_SMTP_WITHOUT_TLS: 'true',
        // The tests run the queue themselves (drain), so what they assert has surely been processed.
        JOB_POLL_INTERVAL_MS: '3600000', LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '3',
      },
    }), (server) => server.close());
  });
  after(() => open.close());

  const mailsTo = (email: string) => smtp.messages.filter((m) => m.to.includes(email));
  const drain = () => t.server.services.jobs.drain();
  const login = (user: { email: string; password: string }, address: string, agent = FIREFOX) =>
    t.client().post('/v1/login', { email: user.email, password: user.password }, from(address, agent));
  async function alertsOf(client: { get(path: string): Promise<{ body: { events: Feed } }> }): Promise<Feed> {
    return (await client.get('/v1/me/security-events')).body.events.filter((e) => e.action === 'alert.raised');
  }

  test('a login from a new address mails the user naming it and enters their security events; known addresses stay quiet', async () => {
    const user = await signUp(t, 'newip'); // from 127.0.0.1, the first known address
    await drain();
    assert.equal((await login(user, '127.0.0.1', 'test-client')).status, 200);
    assert.equal((await login(user, '203.0.113.77', 'test-client')).status, 200);
    await drain();
    const mail = mailsTo(user.email).find((m) => m.body.includes('203.0.113.77'));
    assert.ok(mail, 'a mail names the new address');
    assert.match(mail.subject, /New sign-in/);
    assert.match(mail.body, /new address: 203\.0\.113\.77/);
    assert.equal((await login(user, '203.0.113.77', 'test-client')).status, 200, 'now a known address');
    await drain();
    const alerts = await alertsOf(user.client);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.ip, '203.0.113.77');
    assert.equal(alerts[0]!.details['rule'], 'new_ip_login');
    assert.equal(mailsTo(user.email).length, 1);

    // Another browser from a known address: a new device; an update of the same browser is not.
    assert.equal((await login(user, '127.0.0.1', FIREFOX.replace(/128\.0/g, '129.0'))).status, 200);
    assert.equal((await login(user, '127.0.0.1', FIREFOX.replace(/128\.0/g, '130.0'))).status, 200);
    await drain();
    assert.deepEqual((await alertsOf(user.client)).map((a) => a.details['rule']), ['new_device_login', 'new_ip_login']);
    // Nothing readable is kept: the known values are keyed hashes.
    const known = await t.server.services.stores.pii.db.selectFrom('pii_known_values').selectAll().where('user_id', '=', user.userId).execute();
    assert.ok(known.length >= 3 && !JSON.stringify(known).includes('203.0.113.77') && !JSON.stringify(known).includes('Firefox'));
  });

  test('brute force against a member alerts the member and the org\'s owners and admins, and enters the org audit', async () => {
    const org = await createOrgWithRoles(t, 'alerted');
    const { member, owner, admin, auditor } = org.users;
    for (let n = 0; n < 3; n++) {
      assert.equal((await login({ email: member.email, password: strongPassword() }, `198.51.100.${n + 1}`)).status, 401);
    }
    await drain();
    assert.match(mailsTo(member.email).at(-1)?.subject ?? '', /trying to sign in/);
    for (const user of [owner, admin]) {
      const mail = mailsTo(user.email).at(-1);
      assert.match(mail?.subject ?? '', /under attack/, user.email);
      assert.ok(mail!.body.includes(member.email), 'admins are told which member');
    }
    assert.equal(mailsTo(auditor.email).filter((m) => /under attack/.test(m.subject)).length, 0, 'auditors are not mailed');
    const orgAudit = (await owner.client.get(`/v1/orgs/${org.orgId}/audit?action=alert.raised`)).body.events as Array<{ details: Record<string, unknown> }>;
    assert.equal(orgAudit.length, 1);
    assert.equal(orgAudit[0]!.details['rule'], 'brute_force');
  });

  test('a weakened org policy alerts the owners and admins', async () => {
    const org = await createOrgWithRoles(t, 'policy');
    const { owner, admin, member } = org.users;
    await stepUp(owner);
    const stricter = defaultOrgPolicy();
    stricter.session.idleTimeoutMinutes = 30;
    assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, stricter)).status, 200);
    await drain();
    assert.equal(mailsTo(admin.email).filter((m) => /weakened/.test(m.subject)).length, 0, 'a stricter policy raises nothing');
    const looser = defaultOrgPolicy();
    looser.session.idleTimeoutMinutes = 240;
    looser.password.minLength = 10;
    assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, looser)).status, 200);
    await drain();
    for (const user of [owner, admin]) {
      const mail = mailsTo(user.email).find((m) => /weakened/.test(m.subject));
      assert.ok(mail, user.email);
      assert.match(mail.body, /Loosened: password\.minLength, session\.idleTimeoutMinutes/);
      assert.ok(mail.body.includes(owner.email), 'names who did it');
    }
    assert.equal(mailsTo(member.email).filter((m) => /weakened/.test(m.subject)).length, 0);
  });

  test('a new API token is told to its owner: a stolen session could mint one that outlives a password reset', async () => {
    const user = await signUp(t, 'tokennew');
    await drain();
    const created = await user.client.post('/v1/me/tokens', { name: 'ci', scopes: ['profile:read', 'introspect'], expiresInDays: 30 }, from('198.51.100.7'));
    assert.equal(created.status, 201);
    await drain();
    const alerts = await alertsOf(user.client);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.details['rule'], 'token_created');
    assert.equal(alerts[0]!.details['tokenId'], created.body.id);
    const mail = mailsTo(user.email).find((m) => /A new API token was added/.test(m.subject));
    assert.ok(mail, 'the owner is mailed');
    assert.ok(mail.body.includes(created.body.id), 'names the token');
    assert.match(mail.body, /from 198\.51\.100\.7/);
    assert.match(mail.body, /Scopes: profile:read, introspect/);
    assert.match(mail.body, /Expires: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    assert.ok(!mail.body.includes(created.body.token), 'never the secret');
  });

  test('an API token used from a new address alerts its owner', async () => {
    const user = await signUp(t, 'tokenip');
    const token = (await user.client.post('/v1/me/tokens', { name: 'ci', scopes: ['profile:read'] })).body.token as string;
    const use = (address: string) => t.client().get('/v1/session', { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': address } });
    const newIpAlerts = async () => (await alertsOf(user.client)).filter((alert) => alert.details['rule'] === 'token_new_ip');
    assert.equal((await use('127.0.0.1')).status, 200, 'where it was created');
    await drain();
    assert.equal((await newIpAlerts()).length, 0);
    t.clock.advance(61_000); // token use is recorded at most once a minute
    assert.equal((await use('192.0.2.50')).status, 200);
    await drain();
    const alerts = await newIpAlerts();
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.details['rule'], 'token_new_ip');
    assert.equal(alerts[0]!.ip, '192.0.2.50');
    assert.match(mailsTo(user.email).at(-1)?.body ?? '', /used from a new address: 192\.0\.2\.50/);
  });

  test('a staff role assumed is told to the person whose account assumed it', async () => {
    const user = await signUp(t, 'staffer');
    await t.server.services.events.record({
      action: 'staff_role.assumed', actor: { type: 'user', id: user.userId }, target: { type: 'session', id: 'ses_x' },
      origin: { ip: '192.0.2.9', userAgent: 'test' }, outcome: 'success', details: { role: 'support', reason: 'ticket 42', minutes: 30 },
    });
    await drain();
    const alerts = await alertsOf(user.client);
    assert.equal(alerts[0]?.details['rule'], 'staff_role_assumed');
    assert.match(mailsTo(user.email).at(-1)?.body ?? '', /staff role support was assumed with your account from 192\.0\.2\.9/);
  });
});

test('the background worker sends the new-address mail by itself', async () => {
  const open = new Resources();
  try {
    const smtp = open.add(await startSmtpSink(null), (sink) => sink.close());
    const t = open.add(await startTestServer({
      env: { TRUSTED_PROXIES: '127.0.0.1/32', SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, RAMPART_INSECURE_SMTP_WITHOUT_TLS: 'true', JOB_POLL_INTERVAL_MS: '20' },
    }), (server) => server.close());
    const user = await signUp(t, 'worker');
    // The signup's own evaluation runs first (it makes 127.0.0.1 the first known address): wait for an empty queue.
    const pending = async () => (await t.server.services.stores.main.db.selectFrom('jobs').select('id').execute()).length;
    for (let i = 0; i < 250 && (await pending()) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await pending(), 0);
    assert.equal((await t.client().post('/v1/login', { email: user.email, password: user.password }, from('203.0.113.200'))).status, 200);
    const mail = await waitFor(() => smtp.messages.find((m) => m.to.includes(user.email)), 'the alert mail', 10_000);
    assert.match(mail.body, /203\.0\.113\.200/);
  } finally {
    await open.close();
  }
});
