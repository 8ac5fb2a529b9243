import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { rampartWith } from '../helpers/cli.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { createPgSchema } from '../helpers/pg.js';
import { RedisRelay } from '../helpers/redis-relay.js';
import { Resources } from '../helpers/resources.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Polls `condition` every 5 ms for up to `ms` (the fan-out is a message, not a timer under test). */
async function eventually(condition: () => Promise<boolean> | boolean, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Two servers on one PostgreSQL pair of schemas, optionally sharing a Redis (or a relay to it). */
async function twoInstances(open: Resources, redisUrl: string | null): Promise<{ a: TestServer; b: TestServer; mainUrl: string; env: Record<string, string> }> {
  const main = open.add(await createPgSchema('fan_main'), (schema) => schema.drop());
  const pii = open.add(await createPgSchema('fan_pii'), (schema) => schema.drop());
  const env: Record<string, string> = { DATABASE_URL: main.url, PII_DATABASE_URL: pii.url };
  if (redisUrl) Object.assign(env, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `rampart-test-${process.pid}-${randomBytes(4).toString('hex')}:` });
  const a = open.add(await startTestServer({ env }), (server) => server.close());
  // The same data dir: one master key for both, as instances of one deployment share it.
  const b = open.add(await startTestServer({ env, dataDir: a.dataDir }), (server) => server.close({ keepData: true }));
  return { a, b, mainUrl: main.url, env };
}

/** A client of `server` that presents the session cookie `from` holds (the same browser, routed to another instance). */
function sameBrowser(server: TestServer, from: ReturnType<TestServer['client']>) {
  const client = server.client();
  client.cookies.set('__Host-rampart_session', from.cookies.get('__Host-rampart_session')!);
  return client;
}

async function deleteBehindTheirBacks(mainUrl: string, userId: string): Promise<void> {
  const db = new pg.Client({ connectionString: mainUrl });
  await db.connect();
  try {
    await db.query('delete from sessions where user_id = $1', [userId]);
  } finally {
    await db.end();
  }
}

describe('read caches across instances sharing PostgreSQL', () => {
  test('without Redis nothing is kept: a session deleted behind the instances\' backs is refused at once', async () => {
    const open = new Resources();
    try {
      const { a, b, mainUrl } = await twoInstances(open, null);
      assert.equal(b.server.services.stores.main.changes.trusted, false);
      const { client, userId } = await signUp(a, 'fan-none');
      const onB = sameBrowser(b, client);
      assert.equal((await onB.get('/v1/session')).status, 200);
      await deleteBehindTheirBacks(mainUrl, userId);
      assert.equal((await onB.get('/v1/session')).status, 401);
    } finally {
      await open.close();
    }
  });

  describe('with Redis (one pair of instances for these tests)', () => {
    const open = new Resources();
    let a: TestServer;
    let b: TestServer;
    let env: Record<string, string>;
    before(async () => {
      ({ a, b, env } = await twoInstances(open, REDIS_URL));
    });
    after(() => open.close());

    test('B keeps the session it read, and a logout on A reaches B through the fan-out', async () => {
      assert.equal(b.server.services.stores.main.changes.trusted, true, 'subscribed at start-up');
      const { client } = await signUp(a, 'fan-logout');
      const onB = sameBrowser(b, client);
      const first = await onB.get('/v1/session');
      assert.equal(first.status, 200);
      assert.equal((await client.post('/v1/logout', undefined, { headers: { 'x-csrf-token': first.body.csrfToken } })).status, 204);
      assert.ok(await eventually(async () => (await onB.get('/v1/session')).status === 401), 'B refuses the session A ended');
    });

    test('an operator command, another process on the same stores, reaches both instances through the fan-out', async () => {
      const { client, email } = await signUp(a, 'fan-cli');
      const onB = sameBrowser(b, client);
      assert.equal((await client.get('/v1/session')).status, 200, 'kept on A');
      assert.equal((await onB.get('/v1/session')).status, 200, 'kept on B');
      const ended = await rampartWith(env, 'sessions', 'end', '--user', email, '--data-dir', a.dataDir);
      assert.equal(ended.code, 0, ended.stderr);
      assert.match(ended.stdout, /^ended 1 session\(s\)/);
      assert.ok(await eventually(async () => (await client.get('/v1/session')).status === 401), 'A refuses it');
      assert.ok(await eventually(async () => (await onB.get('/v1/session')).status === 401), 'B refuses it');
    });

    test('a membership added on A shows in B\'s next session answers', async () => {
      const { client } = await signUp(a, 'fan-org');
      const onB = sameBrowser(b, client);
      const initial = await onB.get('/v1/session');
      assert.deepEqual(initial.body.orgs, []);
      const created = await client.post('/v1/orgs', { name: 'Fan Org', slug: `fan-org-${randomBytes(4).toString('hex')}` }, { headers: { 'x-csrf-token': initial.body.csrfToken } });
      assert.equal(created.status, 201);
      assert.ok(await eventually(async () => (await onB.get('/v1/session')).body.orgs?.length === 1));
    });
  });

  test('Redis cut: B stops trusting its caches (reads the store every time) and trusts them again once resubscribed', async () => {
    const open = new Resources();
    try {
      const relay = open.add(await new RedisRelay().start(), (r) => r.close());
      const { a, b, mainUrl } = await twoInstances(open, relay.url);
      const feed = b.server.services.stores.main.changes;
      assert.equal(feed.trusted, true);
      const { client, userId } = await signUp(a, 'fan-cut');
      const onB = sameBrowser(b, client);
      assert.equal((await onB.get('/v1/session')).status, 200);

      await relay.cut();
      assert.ok(await eventually(() => !feed.trusted), 'the lost subscription is noticed');
      // Untrusted: a delete nobody announces is still seen, because nothing is kept.
      await deleteBehindTheirBacks(mainUrl, userId);
      assert.equal((await onB.get('/v1/session')).status, 401);

      await relay.start();
      assert.ok(await eventually(() => feed.trusted, 10_000), 'trusted again once resubscribed');
    } finally {
      await open.close();
    }
  });
});
