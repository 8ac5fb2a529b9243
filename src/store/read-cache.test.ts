import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChangeFeed } from './change-feed.js';
import { altersRows, ReadCache } from './read-cache.js';

function setup(options: { trusted?: boolean; maxEntries?: number } = {}) {
  const feed = new ChangeFeed(options.trusted ?? true);
  let now = 1_000;
  let reads = 0;
  const cache = new ReadCache<string, string | null>({
    feed,
    dependsOn: (change) => change.table === 'rows',
    maxEntries: options.maxEntries ?? 10,
    maxAgeMs: 60_000,
    now: () => now,
  });
  const load = (key: string, value: string | null = `v:${key}`) => cache.get(key, async () => {
    reads++;
    return value;
  });
  return { feed, cache, load, reads: () => reads, advance: (ms: number) => { now += ms; } };
}

test('a value is read once and then kept', async () => {
  const { load, reads } = setup();
  assert.equal(await load('a'), 'v:a');
  assert.equal(await load('a'), 'v:a');
  assert.equal(reads(), 1);
});

test('a change to a table it depends on empties it; other tables leave it alone', async () => {
  const { feed, load, reads } = setup();
  await load('a');
  feed.announce([{ table: 'other', kind: 'delete', columns: null }]);
  await load('a');
  assert.equal(reads(), 1);
  feed.announce([{ table: 'other', kind: 'update', columns: null }, { table: 'rows', kind: 'update', columns: ['x'] }]);
  await load('a');
  assert.equal(reads(), 2);
  feed.announce('anything');
  await load('a');
  assert.equal(reads(), 3);
});

test('a read in flight when a change arrives is returned but not kept (it may hold the old row)', async () => {
  const { feed, cache } = setup();
  let release: () => void = () => undefined;
  const inFlight = cache.get('a', () => new Promise<string>((resolve) => { release = () => resolve('old'); }));
  feed.announce([{ table: 'rows', kind: 'delete', columns: null }]);
  release();
  assert.equal(await inFlight, 'old');
  assert.equal(cache.peek('a'), undefined);
});

test('missing values are never kept', async () => {
  const { load, reads } = setup();
  assert.equal(await load('gone', null), null);
  assert.equal(await load('gone', null), null);
  assert.equal(reads(), 2);
});

test('entries are reread after maxAgeMs even without a change', async () => {
  const { load, reads, advance } = setup();
  await load('a');
  advance(59_999);
  await load('a');
  assert.equal(reads(), 1);
  advance(1);
  await load('a');
  assert.equal(reads(), 2);
});

test('bounded: reaching maxEntries empties the cache', async () => {
  const { cache, load } = setup({ maxEntries: 3 });
  for (const key of ['a', 'b', 'c']) await load(key);
  assert.equal(cache.size, 3);
  await load('d');
  assert.equal(cache.size, 1);
});

test('on an untrusted feed (a shared PostgreSQL store) nothing is kept: every get reads', async () => {
  const { cache, load, reads } = setup({ trusted: false });
  await load('a');
  await load('a');
  assert.equal(reads(), 2);
  assert.equal(cache.size, 0);
});

test('delete forgets one entry', async () => {
  const { cache, load, reads } = setup();
  await load('a');
  await load('b');
  cache.delete('a');
  await load('a');
  await load('b');
  assert.equal(reads(), 3);
});

test('altersRows: a new row or a bookkeeping-only UPDATE leaves kept rows alone; anything else of the table does not', () => {
  const touch = ['last_seen_at'];
  assert.equal(altersRows({ table: 'sessions', kind: 'insert', columns: null }, 'sessions', touch), false);
  assert.equal(altersRows({ table: 'users', kind: 'delete', columns: null }, 'sessions', touch), false);
  assert.equal(altersRows({ table: 'sessions', kind: 'update', columns: ['last_seen_at'] }, 'sessions', touch), false);
  assert.equal(altersRows({ table: 'sessions', kind: 'update', columns: ['last_seen_at', 'mfa_verified'] }, 'sessions', touch), true);
  assert.equal(altersRows({ table: 'sessions', kind: 'update', columns: ['id_hash'] }, 'sessions', touch), true);
  assert.equal(altersRows({ table: 'sessions', kind: 'update', columns: null }, 'sessions', touch), true, 'an upsert may change anything');
  assert.equal(altersRows({ table: 'sessions', kind: 'update', columns: [] }, 'sessions', touch), true);
  assert.equal(altersRows({ table: 'sessions', kind: 'delete', columns: null }, 'sessions', touch), true);
  assert.equal(altersRows({ table: 'users', kind: 'update', columns: ['last_seen_at'] }, 'users'), true, 'no bookkeeping named: every UPDATE counts');
});
