/**
 * Audit and rate-limit benchmarks for `npm run bench` (bench/run.ts calls `benchAudit`):
 *
 *  - audit appends per second on SQLite, one event per transaction and in batches of
 *    500, each against plain INSERTs of the same rows into the same kind of table
 *    without the chain (no head row, no hashing, no encryption), measured in the
 *    same process one after the other (target: at least 5,000 appends/s, batched or not);
 *  - the throughput cost of rate limiting on GET /v1/session: the default server
 *    (limits on, memory counters, set high enough never to refuse) against a second
 *    server with RAMPART_INSECURE_DISABLE_RATE_LIMITS, measured back to back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { randomId } from '../src/crypto/random.js';
import { loadConfig } from '../src/config/load.js';
import type { SecurityEvent } from '../src/events/security-events.js';
import { createLogger } from '../src/logger.js';
import { createServices } from '../src/services.js';
import { openStore } from '../src/store/db.js';
import { type BenchRow, load, ratio, startRampart } from './lib.js';
import type { BenchContext } from './run.js';

const BATCH = 500;

export async function benchAudit(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  rows.push(...(await auditAppends(ctx.seconds)));
  rows.push(await rateLimitCost(ctx));
  return rows;
}

function event(n: number, time: number): SecurityEvent {
  return {
    action: 'login.succeeded', actor: { type: 'user', id: `usr_bench${n % 100}` }, target: { type: 'session', id: `ses_${n}` },
    ip: '203.0.113.10', userAgent: 'Mozilla/5.0 (bench)', outcome: 'success', details: { mfa: false, method: 'password' }, time,
  };
}

async function auditAppends(seconds: number): Promise<BenchRow[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-audit-'));
  const config = loadConfig({ env: { RAMPART_DATA_DIR: dataDir, LOG_LEVEL: 'silent' }, flags: {} });
  const services = await createServices(config, createLogger('silent', new Writable({ write: (_c, _e, done) => done() })));
  const plain = openStore<PlainDB>(null, join(dataDir, 'plain.db'));
  try {
    await plain.db.schema.createTable('plain_events')
      .addColumn('seq', 'integer', (c) => c.primaryKey()).addColumn('id', 'text', (c) => c.notNull().unique()).addColumn('time', 'bigint')
      .addColumn('actor_id', 'text').addColumn('action', 'text').addColumn('target_id', 'text').addColumn('ip', 'text')
      .addColumn('user_agent', 'text').addColumn('outcome', 'text').addColumn('details', 'text').execute();
    let n = 0;
    const plainRow = () => {
      const e = event(++n, Date.now());
      return { seq: n, id: randomId('evt'), time: e.time, actor_id: e.actor.id, action: e.action, target_id: e.target!.id, ip: e.ip!, user_agent: e.userAgent!, outcome: e.outcome, details: JSON.stringify(e.details) };
    };
    const half = seconds / 2;

    console.error('# audit appends, one per transaction…');
    const single = await rate(half, 1, () => services.events.record(event(++n, Date.now())));
    const plainSingle = await rate(half, 1, () => plain.db.transaction().execute((trx) => trx.insertInto('plain_events').values(plainRow()).execute()));
    console.error('# audit appends, batches of 500…');
    const batched = await rate(half, BATCH, async () => {
      await services.audit.append(Array.from({ length: BATCH }, () => event(++n, Date.now())));
    });
    const plainBatched = await rate(half, BATCH, async () => {
      const values = Array.from({ length: BATCH }, plainRow);
      await plain.db.transaction().execute(async (trx) => {
        for (let i = 0; i < values.length; i += 250) await trx.insertInto('plain_events').values(values.slice(i, i + 250)).execute();
      });
    });
    const verify = await services.audit.verify();
    if (!verify.valid) throw new Error(`bench: the chain does not verify: ${JSON.stringify(verify.broken)}`);
    return [
      { name: 'audit appends, SQLite, one per transaction', value: single, unit: 'appends/s', baselineName: 'plain INSERT, one per transaction', baselineValue: plainSingle, ratio: ratio(single, plainSingle), target: '>= 5,000/s (batched or not)' },
      { name: `audit appends, SQLite, batches of ${BATCH}`, value: batched, unit: 'appends/s', baselineName: `plain INSERT, batches of ${BATCH}`, baselineValue: plainBatched, ratio: ratio(batched, plainBatched), target: '>= 5,000/s (batched or not)' },
    ];
  } finally {
    await plain.db.destroy();
    await services.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface PlainDB {
  plain_events: { seq: number; id: string; time: number; actor_id: string | null; action: string; target_id: string; ip: string; user_agent: string; outcome: string; details: string };
}

/** Items per second of `call` (each call handles `perCall` items), sequentially, after a short warm-up. */
async function rate(seconds: number, perCall: number, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.max(3, 200 / perCall); i++) await call();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let done = 0;
  while (performance.now() < deadline) {
    await call();
    done += perCall;
  }
  return done / ((performance.now() - started) / 1000);
}

async function rateLimitCost(ctx: BenchContext): Promise<BenchRow> {
  const unlimited = await startRampart({ LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', METRICS_PORT: '0', RAMPART_INSECURE_DISABLE_RATE_LIMITS: 'true' });
  try {
    const client = unlimited.client();
    const signup = await client.post('/v1/signup', { email: 'rate.limits.off@example.com', password: 'violet-Tractor-marble-harbor-Quill', name: 'Bench' });
    if (signup.status !== 201) throw new Error(`bench: signup failed (${signup.status})`);
    const cookie = `__Host-rampart_session=${client.cookies.get('__Host-rampart_session')}`;
    console.error('# GET /v1/session, rate limits off…');
    const off = await load({ url: `${unlimited.url}/v1/session`, headers: { cookie }, connections: 10, durationSeconds: ctx.seconds });
    console.error('# GET /v1/session, rate limits on…');
    const on = await load({ url: `${ctx.rampart.url}/v1/session`, headers: { cookie: ctx.sessionCookie }, connections: 10, durationSeconds: ctx.seconds });
    if (on.non2xx > 0 || off.non2xx > 0) throw new Error(`bench: non-2xx answers (on ${on.non2xx}, off ${off.non2xx}); are the bench limits high enough?`);
    return {
      name: 'GET /v1/session with rate limiting', value: on.requestsPerSecond, unit: 'req/s',
      baselineName: 'same, RAMPART_INSECURE_DISABLE_RATE_LIMITS', baselineValue: off.requestsPerSecond, ratio: ratio(on.requestsPerSecond, off.requestsPerSecond), target: '>= 0.9',
    };
  } finally {
    await unlimited.stop();
  }
}

