import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { test } from 'node:test';
import { signUp, startTestServer, strongPassword } from '../helpers/harness.js';
import { Resources } from '../helpers/resources.js';

function scrape(port: number, path = '/metrics', method = 'GET'): Promise<{ status: number; type: string; text: string; allow?: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text, allow: res.headers['allow'] }));
    }).on('error', reject).end();
  });
}

test('Prometheus metrics on their own loopback listener, never on the public one', async () => {
  const t = await startTestServer();
  try {
    const { email, password } = await signUp(t, 'metrics');
    assert.equal((await t.client().post('/v1/login', { email, password })).status, 200);
    assert.equal((await t.client().post('/v1/login', { email, password: strongPassword() })).status, 401);
    const port = t.server.metricsPort;
    assert.ok(port && port !== t.server.port, 'a separate port');
    const { status, type, text } = await scrape(port);
    assert.equal(status, 200);
    assert.match(type, /^text\/plain; version=0\.0\.4/);
    assert.match(text, /^rampart_logins_total\{outcome="success"\} 1$/m);
    assert.match(text, /^rampart_logins_total\{outcome="failure"\} 1$/m);
    assert.match(text, /^rampart_audit_appends_total [1-9]\d*$/m);
    assert.match(text, /^rampart_http_request_duration_seconds_bucket\{le="0\.5",method="POST",route="\/v1\/login",status="2xx"\} [1-9]/m);
    for (const name of ['rampart_mfa_total', 'rampart_rate_limit_hits_total', 'rampart_login_lockouts_total', 'rampart_webhook_deliveries_total', 'rampart_alerts_total', 'rampart_process_cpu_seconds_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.ok(!text.includes(email) && !text.includes('127.0.0.1'), 'no personal data in labels');
    assert.equal((await scrape(port, '/other')).status, 404);
    for (const method of ['POST', 'PUT', 'DELETE', 'TRACE', 'OPTIONS']) {
      const refused = await scrape(port, '/metrics', method);
      assert.deepEqual([refused.status, refused.allow], [405, 'GET'], method);
      assert.ok(!refused.text.includes('rampart_'), `${method}: no metrics`);
    }
    const connect = await new Promise<string>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n'));
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to CONNECT: ${JSON.stringify(answer)}`)));
    });
    assert.match(connect, /^HTTP\/1\.1 405 /, 'CONNECT is answered, not dropped');
    const publicScrape = await t.client().get('/metrics');
    assert.equal(publicScrape.status, 404, 'not on the public listener');
  } finally {
    await t.close();
  }
});

test('a taken metrics port does not stop the server', async () => {
  const open = new Resources();
  try {
    const first = open.add(await startTestServer(), (server) => server.close());
    const second = open.add(await startTestServer({ env: { METRICS_PORT: String(first.server.metricsPort) } }), (server) => server.close());
    assert.equal(second.server.metricsPort, null);
    assert.ok(second.logs.some((line) => line.includes('metrics listener could not bind')));
    assert.equal((await second.client().get('/healthz')).status, 200);
  } finally {
    await open.close();
  }
});
