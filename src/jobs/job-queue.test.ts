import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { ManualClock } from '../clock.js';
import { openStores, type Stores } from '../store/db.js';
import { migrateStores } from '../store/migrate.js';
import { JobRepository } from '../store/repositories/jobs.js';
import { JobQueue, PermanentJobError } from './job-queue.js';

let stores: Stores;
let dataDir: string;
before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rampart-jobs-'));
  stores = openStores({ dataDir, databaseUrl: null, piiDatabaseUrl: null });
  await migrateStores(stores);
});
after(async () => {
  await stores.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The real repository, with its DELETEs counted. */
function countingRepository(): { repo: JobRepository; completions: string[][] } {
  const repo = new JobRepository(stores.main.db, false);
  const completions: string[][] = [];
  const complete = repo.complete.bind(repo);
  repo.complete = async (ids) => {
    completions.push([...ids]);
    await complete(ids);
  };
  return { repo, completions };
}

const RETRY = { baseDelayMs: 1000, maxDelayMs: 60_000, maxAttempts: 3 };

test('a batch of finished jobs is deleted in one statement; failed ones stay for their retry or as given up', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 29));
  const { repo, completions } = countingRepository();
  const queue = new JobQueue(repo, clock, pino({ level: 'silent' }), 1000);
  const ran: string[] = [];
  queue.register('ok.ordered', { retry: RETRY, ordered: true }, async (payload) => { ran.push(`ordered ${payload['n']}`); });
  queue.register('ok.parallel', { retry: RETRY }, async (payload) => { ran.push(`parallel ${payload['n']}`); });
  queue.register('flaky', { retry: RETRY }, async () => { throw new Error('endpoint down'); });
  queue.register('doomed', { retry: RETRY }, async () => { throw new PermanentJobError('never works'); });
  await queue.enqueueMany([
    ...[1, 2, 3].map((n) => ({ kind: 'ok.ordered', payload: { n } })),
    ...[1, 2].map((n) => ({ kind: 'ok.parallel', payload: { n } })),
    { kind: 'flaky', payload: {} },
    { kind: 'doomed', payload: {} },
  ]);

  assert.equal(await queue.drain(), 7);
  assert.deepEqual(ran.filter((line) => line.startsWith('ordered')), ['ordered 1', 'ordered 2', 'ordered 3'], 'ordered jobs run in order');
  assert.equal(ran.length, 5);
  assert.equal(completions.length, 1, 'one DELETE for the batch');
  assert.equal(completions[0]!.length, 5);
  const left = await repo.list();
  assert.deepEqual(left.map((job) => job.kind).sort(), ['doomed', 'flaky']);
  assert.ok(left.find((job) => job.kind === 'doomed')!.failed_at !== null, 'a permanent failure gives up');
  const flaky = left.find((job) => job.kind === 'flaky')!;
  assert.equal(flaky.failed_at, null);
  assert.equal(flaky.run_at, clock.now() + 1000, 'a failure is retried after the back-off');
  assert.equal(flaky.locked_until, 0);

  // Nothing finished: no DELETE at all.
  clock.advance(1000);
  assert.equal(await queue.drain(), 1);
  assert.equal(completions.length, 1);
  await stores.main.db.deleteFrom('jobs').execute();
});

test('a finished job not yet deleted stays leased: no second run before its lease ends', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 29));
  const repo = new JobRepository(stores.main.db, false);
  // The DELETE fails (as a crash right after the handlers would leave it).
  repo.complete = async () => { throw new Error('store gone'); };
  const queue = new JobQueue(repo, clock, pino({ level: 'silent' }), 1000);
  let runs = 0;
  queue.register('once', { retry: RETRY }, async () => { runs++; });
  await queue.enqueue('once', {});
  await assert.rejects(queue.drain(), /store gone/);
  assert.equal(runs, 1);
  clock.advance(60_000);
  assert.equal(await queue.drain(), 0, 'nothing to claim: the job is still leased a minute later');
  assert.equal(runs, 1, 'still leased a minute later');
  clock.advance(5 * 60_000);
  await assert.rejects(queue.drain(), /store gone/);
  assert.equal(runs, 2, 'after the lease it runs again: at least once, never lost');
  await stores.main.db.deleteFrom('jobs').execute();
});
