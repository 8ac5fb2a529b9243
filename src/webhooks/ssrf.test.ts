import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertAllowedHost, DestinationRefused, isPublicAddress, parseWebhookUrl, resolveDestination } from './ssrf.js';
import { signWebhook, verifyWebhookSignature } from '../sdk/webhook-signature.js';

test('only public unicast addresses are reachable', () => {
  for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPublicAddress(ip), true, ip);
  for (const ip of [
    '127.0.0.1', '127.255.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '255.255.255.255', '224.0.0.1', '192.0.2.1', '198.18.0.1', '::1', '::', 'fe80::1', 'fc00::1', 'fd12::1',
    '::ffff:127.0.0.1', '::ffff:10.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::', '2001::1', '2001:db8::1', 'ff02::1', 'not-an-ip',
  ]) assert.equal(isPublicAddress(ip), false, ip);
});

test('webhook URLs: https only, no credentials, no private literal in any spelling', () => {
  assert.equal(parseWebhookUrl('https://hooks.example.com/rampart?x=1', false).hostname, 'hooks.example.com');
  for (const raw of [
    'http://hooks.example.com/', 'file:///etc/passwd', 'gopher://hooks.example.com/', 'ftp://hooks.example.com/',
    'https://user:pass@hooks.example.com/', 'https://127.0.0.1/', 'https://127.1/', 'https://2130706433/', 'https://0x7f.1/',
    'https://017700000001/', 'https://[::ffff:127.0.0.1]/', 'https://[::1]/', 'https://169.254.169.254/latest/meta-data/',
    'https://10.0.0.5/', 'https://192.168.0.1/', 'https://[fe80::1]/', 'https://[fd00::1]/', 'https://localhost/',
    'https://api.localhost/', 'https://intranet/', 'not a url', 'https://hooks.example.com/#frag',
  ]) assert.throws(() => parseWebhookUrl(raw, false), DestinationRefused, raw);
  // The loudly named option lets a local receiver in (tests, a sidecar).
  assert.equal(parseWebhookUrl('http://127.0.0.1:9/', true).port, '9');
});

test('a name is refused when any of its addresses is private, at registration and again at delivery', async () => {
  const resolver = (answers: string[]) => async () => answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  const url = new URL('https://hooks.example.com/');
  assert.deepEqual(await resolveDestination(url, false, resolver(['93.184.216.34'])), { address: '93.184.216.34', family: 4 });
  await assert.rejects(resolveDestination(url, false, resolver(['93.184.216.34', '10.0.0.1'])), DestinationRefused);
  await assert.rejects(resolveDestination(url, false, resolver(['127.0.0.1'])), DestinationRefused, 'rebinding to loopback');
  await assert.rejects(resolveDestination(url, false, resolver([])), DestinationRefused);
  await assert.rejects(resolveDestination(url, false, async () => { throw new Error('ENOTFOUND'); }), /does not resolve/);
  assert.equal((await resolveDestination(url, true, resolver(['127.0.0.1']))).address, '127.0.0.1');
});

test('signatures: HMAC over timestamp and body, constant-time check, stale or altered deliveries refused', () => {
  const secret = 'whsec_test';
  const body = '{"type":"login.succeeded"}';
  const header = signWebhook(secret, 1_700_000_000, body);
  assert.match(header, /^t=1700000000,v1=[0-9a-f]{64}$/);
  assert.equal(verifyWebhookSignature(secret, header, body, 1_700_000_100), true);
  assert.equal(verifyWebhookSignature(secret, header, `${body} `, 1_700_000_100), false, 'altered body');
  assert.equal(verifyWebhookSignature('whsec_other', header, body, 1_700_000_100), false, 'other secret');
  assert.equal(verifyWebhookSignature(secret, header, body, 1_700_001_000), false, 'replayed after the tolerance');
  assert.equal(verifyWebhookSignature(secret, header.replace('t=1700000000', 't=1700000001'), body, 1_700_000_100), false, 'timestamp is signed');
  assert.equal(verifyWebhookSignature(secret, undefined, body, 1_700_000_100), false);
  assert.equal(verifyWebhookSignature(secret, 'garbage', body, 1_700_000_100), false);
});

test('WEBHOOK_ALLOWED_HOSTS: exact hosts and *.domain subdomains only; empty allows any (ASVS V13.2.4)', () => {
  const allowed = ['hooks.example.com', '*.customer.example'];
  const ok = (raw: string) => assertAllowedHost(new URL(raw), allowed);
  ok('https://hooks.example.com/x');
  ok('https://HOOKS.example.com/x');
  ok('https://a.customer.example/x');
  ok('https://b.a.customer.example/x');
  for (const raw of [
    'https://other.example.com/x', // not named
    'https://customer.example/x', // the apex is not a subdomain
    'https://evilcustomer.example/x', // a suffix without the dot
    'https://hooks.example.com.evil.test/x', // the named host as a prefix
    'https://93.184.216.34/x', // an address, not a named host
  ]) assert.throws(() => ok(raw), DestinationRefused, raw);
  assertAllowedHost(new URL('https://anything.example.org/'), []);
});
