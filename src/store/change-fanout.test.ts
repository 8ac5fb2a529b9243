import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLogger } from '../logger.js';
import { ChangeFanout } from './change-fanout.js';
import { ChangeFeed, type ChangeOrigin, type StoreChange } from './change-feed.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const channel = `rampart-test-${process.pid}-${randomBytes(4).toString('hex')}:changes`;
const logger = createLogger('silent', new Writable({ write: (_chunk, _encoding, done) => done() }));

let publisher: Redis;
let feed: ChangeFeed;
let other: ChangeFeed;
let fanout: ChangeFanout;
let otherFanout: ChangeFanout;
const seen: Array<[StoreChange, ChangeOrigin]> = [];
const published: string[] = [];
let spy: Redis;

before(async () => {
  publisher = new Redis(REDIS_URL);
  spy = new Redis(REDIS_URL);
  await spy.subscribe(channel);
  spy.on('message', (_channel: string, message: string) => published.push(message));
  feed = new ChangeFeed(false);
  other = new ChangeFeed(false);
  // Interests, as read caches register them: only `sessions` matters here.
  feed.subscribe((change, origin) => seen.push([change, origin]), (change) => change.table === 'sessions');
  other.subscribe(() => undefined, (change) => change.table === 'sessions');
  fanout = new ChangeFanout({ feeds: { main: feed }, publisher, channel, logger });
  otherFanout = new ChangeFanout({ feeds: { main: other }, publisher, channel, logger });
  assert.equal(await fanout.ready(5000), true);
  assert.equal(await otherFanout.ready(5000), true);
  seen.length = 0;
});

after(async () => {
  await fanout.close();
  await otherFanout.close();
  publisher.disconnect();
  spy.disconnect();
});

async function settle(): Promise<void> {
  // A round trip through Redis on the same connections orders after the messages sent before it.
  await publisher.ping();
  await spy.ping();
  await new Promise((resolve) => setTimeout(resolve, 50));
}

test('a local change the caches care about reaches the other instance; its own echo and unrelated tables do not travel', async () => {
  other.announce([{ table: 'audit_events', kind: 'insert', columns: null }, { table: 'sessions', kind: 'delete', columns: null }]);
  other.announce([{ table: 'jobs', kind: 'update', columns: ['state'] }]);
  await settle();
  assert.deepEqual(seen, [[[{ table: 'sessions', kind: 'delete', columns: null }], 'remote']]);
  assert.equal(published.length, 1, 'the jobs update was not published');
  assert.ok(!published[0]!.includes('audit_events'), 'only the tables some cache depends on are published');
  seen.length = 0;
  feed.announce([{ table: 'sessions', kind: 'update', columns: ['mfa_verified'] }]);
  await settle();
  assert.deepEqual(seen, [[[{ table: 'sessions', kind: 'update', columns: ['mfa_verified'] }], 'local']], 'no echo of its own message');
});

test('a message it cannot read as table changes empties its caches; garbage, foreign stores and oversized messages are ignored or emptied, never thrown', async () => {
  seen.length = 0;
  await publisher.publish(channel, JSON.stringify({ from: 'someone', store: 'main', change: [{ table: 1 }] }));
  await publisher.publish(channel, JSON.stringify({ from: 'someone', store: 'main', change: 'anything' }));
  await publisher.publish(channel, 'not json');
  await publisher.publish(channel, JSON.stringify({ from: 'someone', store: 'elsewhere', change: 'anything' }));
  await publisher.publish(channel, JSON.stringify({ from: 'someone', store: 'main', change: 'anything', pad: 'x'.repeat(70_000) }));
  await settle();
  assert.deepEqual(seen, [['anything', 'remote'], ['anything', 'remote']]);
});

test('losing trust or gaining it announces anything (every cache empties)', () => {
  const local = new ChangeFeed(false);
  const changes: StoreChange[] = [];
  local.subscribe((change) => changes.push(change));
  local.setTrusted(true);
  local.setTrusted(true);
  local.setTrusted(false);
  assert.deepEqual(changes, ['anything', 'anything']);
});
