import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { register } from 'prom-client';
import { createLogger } from '../../logger.js';
import { BreachedPasswordChecker } from './breached.js';

const BREACHED = 'harbor-violet-quill-tractor';
const CLEAN = 'a-password-nobody-ever-leaked';

function sha1(value: string): string {
  return createHash('sha1').update(value).digest('hex').toUpperCase();
}

/** A small server that speaks the k-anonymity range protocol (GET /range/{5 hex} → SUFFIX:COUNT lines). */
function rangeServer(known: string[]): { server: Server; paths: string[] } {
  const paths: string[] = [];
  const server = createServer((request, response) => {
    paths.push(request.url ?? '');
    const prefix = /^\/range\/([0-9A-F]{5})$/.exec(request.url ?? '')?.[1];
    if (!prefix) return void response.writeHead(400).end();
    const lines = known.map(sha1).filter((digest) => digest.startsWith(prefix)).map((digest) => `${digest.slice(5)}:42`);
    // Padding entries (count 0) as the real service adds with Add-Padding: true; one has the clean password's suffix.
    lines.push(`${sha1(CLEAN).slice(5)}:0`, `${'0'.repeat(35)}:0`);
    response.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
  });
  return { server, paths };
}

describe('breached-password check (k-anonymity range protocol)', () => {
  let server: Server;
  let paths: string[];
  let base: string;
  const logs: string[] = [];
  const logger = createLogger('warn', new Writable({ write(chunk: Buffer, _e, done) { logs.push(chunk.toString()); done(); } }));

  before(async () => {
    ({ server, paths } = rangeServer([BREACHED]));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/range/`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('a breached password is found; only 5 hex digits of its SHA-1 leave the process', async () => {
    const checker = new BreachedPasswordChecker({ url: base, timeoutMs: 2000, logger });
    assert.equal(await checker.isBreached(BREACHED), true);
    const sent = paths.at(-1)!;
    assert.equal(sent, `/range/${sha1(BREACHED).slice(0, 5)}`);
    assert.ok(!sent.includes(sha1(BREACHED).slice(5)), 'the suffix never leaves');
  });

  test('a clean password is not flagged, even when a padding entry (count 0) carries its suffix', async () => {
    const checker = new BreachedPasswordChecker({ url: base.replace(/\/$/, ''), timeoutMs: 2000, logger });
    assert.equal(await checker.isBreached(CLEAN), false);
  });

  test('fails open with a log line and a metric when the service is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const checker = new BreachedPasswordChecker({ url: `http://127.0.0.1:${port}/range/`, timeoutMs: 2000, logger });
    const before = await failures('unreachable');
    assert.equal(await checker.isBreached(BREACHED), null);
    assert.equal(await failures('unreachable'), before + 1);
    assert.ok(logs.some((line) => line.includes('failed open')));
    assert.ok(!logs.some((line) => line.includes(BREACHED) || line.includes(sha1(BREACHED))), 'no password or hash in logs');
  });

  test('fails open after the short timeout when the service is slow', async () => {
    const silent = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const checker = new BreachedPasswordChecker({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/range/`, timeoutMs: 150, logger });
      const started = Date.now();
      const before = await failures('timeout');
      assert.equal(await checker.isBreached(BREACHED), null);
      assert.ok(Date.now() - started < 1500, 'the timeout bounds the wait');
      assert.equal(await failures('timeout'), before + 1);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

async function failures(reason: string): Promise<number> {
  const metric = await register.getSingleMetric('rampart_breached_password_check_failures_total')?.get();
  return metric?.values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
}
