import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { signWebhook, signWebhookWithEach, verifyWebhookSignature } from './webhook-signature.js';

test('webhook signatures: HMAC-SHA256 over "<t>.<body>", any matching v1 accepted, old timestamps, other bodies and malformed headers refused', () => {
  const body = '{"id":"del_1","type":"member.added"}';
  const t = 1_764_460_000;
  // The documented construction, computed independently.
  const mac = createHmac('sha256', 'whsec_new').update(`${t}.${body}`).digest('hex');
  assert.equal(signWebhook('whsec_new', t, body), `t=${t},v1=${mac}`);
  const both = signWebhookWithEach(['whsec_new', 'whsec_old'], t, body);
  assert.equal(both.split(',').length, 3);
  for (const secret of ['whsec_new', 'whsec_old']) assert.equal(verifyWebhookSignature(secret, both, body, t), true, secret);
  assert.equal(verifyWebhookSignature('whsec_other', both, body, t), false);
  assert.equal(verifyWebhookSignature('whsec_new', both, `${body} `, t), false, 'another body');
  assert.equal(verifyWebhookSignature('whsec_new', both, body, t + 301), false, 'older than five minutes');
  assert.equal(verifyWebhookSignature('whsec_new', both, body, t - 301), false, 'from the future');
  assert.equal(verifyWebhookSignature('whsec_new', both, body, t + 300), true);
  for (const header of [undefined, '', 'v1=' + mac, `t=${t}`, `t=abc,v1=${mac}`, `t=${t},v1`, `t=${t},=${mac}`, `t=${t},v1=${mac.toUpperCase()}`]) {
    assert.equal(verifyWebhookSignature('whsec_new', header, body, t), false, String(header));
  }
});
