import assert from 'node:assert/strict';
import { request } from 'node:https';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SecurityEvent } from '../../src/events/security-events.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { startTestServer } from '../helpers/harness.js';
import { createOrgWithRoles } from '../helpers/orgs.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Live heap after a full collection: what the process retains, not garbage waiting to be swept. */
function liveHeap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

const EVENTS = 100_000;
const MiB = 1024 * 1024;

test('export of 100k events streams in constant memory', { timeout: 180_000 }, async () => {
  const t = await startTestServer();
  try {
    const org = await createOrgWithRoles(t, 'export');
    const { services } = t.server;
    const padding = 'x'.repeat(400);
    for (let start = 0; start < EVENTS; start += 2000) {
      const batch: SecurityEvent[] = Array.from({ length: 2000 }, (_, i) => ({
        action: 'member.role_changed', orgId: org.orgId, actor: { type: 'user', id: org.users.owner.userId },
        target: { type: 'user', id: org.users.member.userId }, ip: '192.0.2.1', userAgent: 'bulk-loader',
        outcome: 'success', details: { from: 'member', to: 'member', n: start + i, padding }, time: services.clock.now(),
      }));
      await services.audit.append(batch);
    }

    const baseline = liveHeap();
    let peak = baseline;
    let bytes = 0;
    let lines = 0;
    let firstLine = '';
    const cookie = `${SESSION_COOKIE}=${org.users.auditor.client.cookies.get(SESSION_COOKIE)}`;
    await new Promise<void>((resolve, reject) => {
      const req = request(new URL(`/v1/orgs/${org.orgId}/audit/export`, t.url), { ca: t.ca!, headers: { cookie } }, (res) => {
        assert.equal(res.statusCode, 200);
        let chunks = 0;
        res.on('data', (chunk: Buffer) => {
          if (!firstLine) firstLine = chunk.toString('utf8').split('\n')[0]!;
          bytes += chunk.length;
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
          // Sample the retained heap now and then while the server streams.
          if (++chunks % 200 === 0) peak = Math.max(peak, liveHeap());
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    peak = Math.max(peak, liveHeap());

    assert.ok(lines >= EVENTS, `${lines} lines`);
    assert.ok(bytes > 60 * MiB, `the export is large (${(bytes / MiB).toFixed(0)} MiB)`);
    assert.ok(peak - baseline < 24 * MiB, `retained heap grew by ${((peak - baseline) / MiB).toFixed(1)} MiB while streaming ${(bytes / MiB).toFixed(0)} MiB`);
    assert.equal(JSON.parse(firstLine).orgId, org.orgId);
  } finally {
    await t.close();
  }
});
