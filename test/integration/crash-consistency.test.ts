/**
 * Threat: the server process dies (SIGKILL: the OOM killer, a host failure of the
 * process, an operator's kill -9) in the middle of writes, and the stores are left
 * half-written: an account without its profile or its `user.created` event, an org
 * without an owner, a token without its audit record, a broken audit chain, or an
 * acknowledged signup that is gone after the restart.
 *
 * Property: with signups, org creations and token creations running concurrently,
 * `rampart serve` is killed at random moments several times and restarted on the same
 * stores; afterwards the chain verifies, every account has its profile and exactly one
 * `user.created` event, every org its owner and its `org.created` event, every token
 * its `api_token.created` event, and every signup that was answered 201 can log in.
 * SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { BIN, cliEnv, rampartWith } from '../helpers/cli.js';
import { TestClient } from '../helpers/client.js';
import { GENEROUS_LIMITS, strongPassword, type StoreKind } from '../helpers/harness.js';
import { createPgSchema, type PgSchema } from '../helpers/pg.js';

/** Kills (the test's name says four). */
const ROUNDS = 4;
const CLIENTS = 4;

interface Running {
  child: ChildProcess;
  url: string;
}

function serve(dataDir: string, env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir], {
    env: cliEnv({ LOG_LEVEL: 'warn', METRICS_PORT: '0', ...GENEROUS_LIMITS, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const match = /listening on (\S+)/.exec(stdout);
      if (match) resolve({ child, url: match[1]! });
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('exit', (code, signal) => reject(new Error(`serve exited before listening (${code ?? signal}): ${stderr.slice(0, 2000)}`)));
  });
}

function killed(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** Rows of one query, from either store kind. */
type Query = (store: 'main' | 'pii', sql: string) => Promise<Array<Record<string, unknown>>>;

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`a killed server leaves consistent stores (${store})`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-crash-'));
    const schemas: PgSchema[] = [];
    after(async () => {
      for (const schema of schemas) await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('killed four times under concurrent signups, org and token creations, then restarted', async (t) => {
      const env: Record<string, string> = {};
      if (store === 'postgres') {
        schemas.push(await createPgSchema('crash_main'), await createPgSchema('crash_pii'));
        env['DATABASE_URL'] = schemas[0]!.url;
        env['PII_DATABASE_URL'] = schemas[1]!.url;
      }
      const acknowledged: Array<{ email: string; password: string }> = [];
      let n = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const server = await serve(dataDir, env);
        const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8');
        let stop = false;
        const clients: TestClient[] = [];
        const work = async () => {
          while (!stop) {
            const client = new TestClient(server.url, ca);
            clients.push(client);
            const email = `crash.${round}.${++n}.${Date.now()}@example.com`;
            const password = strongPassword();
            try {
              const signup = await client.post('/v1/signup', { email, password });
              if (signup.status !== 201) continue;
              acknowledged.push({ email, password });
              client.csrfToken = signup.body.csrfToken as string;
              await client.post('/v1/orgs', { name: `Crash ${n}`, slug: `crash-${round}-${n}-${Date.now()}` });
              await client.post('/v1/me/tokens', { name: `crash ${n}`, scopes: ['profile:read'] });
            } catch {
              // The server died under the request: the next iteration finds out.
              if (stop) return;
            }
          }
        };
        const before = acknowledged.length;
        const workers = Array.from({ length: CLIENTS }, work);
        // Killed at a random moment once writes are flowing: after this round's first acknowledged
        // signup (a loaded machine may take seconds to start the password-strength worker), then
        // 0.3 to 1.2 s more.
        for (const deadline = Date.now() + 30_000; acknowledged.length === before && Date.now() < deadline;) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 900)));
        await killed(server.child, 'SIGKILL');
        stop = true;
        await Promise.all(workers);
        for (const client of clients) client.close();
      }
      assert.ok(acknowledged.length >= ROUNDS, `signups were acknowledged before the kills (${acknowledged.length})`);

      // Restarted on the same stores: it starts, and every acknowledged signup logs in.
      const server = await serve(dataDir, env);
      const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8');
      try {
        const sample = acknowledged.filter((_, i) => i % Math.max(1, Math.floor(acknowledged.length / 6)) === 0);
        for (const { email, password } of sample) {
          const client = new TestClient(server.url, ca);
          try {
            const login = await client.post('/v1/login', { email, password });
            assert.equal(login.status, 200, `${email} was answered 201 before a kill and must log in after it: ${login.text}`);
          } finally {
            client.close();
          }
        }
      } finally {
        await killed(server.child, 'SIGTERM');
      }

      const verify = await rampartWith({ RAMPART_DATA_DIR: dataDir, ...env }, 'audit', 'verify');
      assert.equal(verify.code, 0, `the audit chain verifies after the kills: ${verify.stderr}`);

      const query = await opener(store, dataDir, env);
      try {
        const ids = async (s: 'main' | 'pii', sql: string) => (await query(s, sql)).map((row) => String(Object.values(row)[0])).sort();
        const users = await ids('main', 'select id from users');
        assert.ok(users.length >= acknowledged.length, `every acknowledged signup has its account (${users.length} of ${acknowledged.length})`);
        const profiles = new Set(await ids('pii', 'select user_id from pii_users'));
        assert.deepEqual(users.filter((id) => !profiles.has(id)), [], 'no account without its profile');
        assert.deepEqual(await ids('main', "select target_id from audit_events where action = 'user.created'"), users, 'one user.created event per account, none without its account');
        const orgs = await ids('main', 'select id from orgs');
        assert.deepEqual(await ids('main', "select target_id from audit_events where action = 'org.created'"), orgs, 'one org.created event per org');
        const owned = new Set(await ids('main', "select org_id from org_memberships where role = 'owner'"));
        assert.deepEqual(orgs.filter((id) => !owned.has(id)), [], 'every org has an owner');
        assert.deepEqual(await ids('main', "select target_id from audit_events where action = 'api_token.created'"), await ids('main', 'select id from api_tokens'), 'one api_token.created event per token');
        const sessionsWithoutUser = await query('main', 'select s.user_id from sessions s left join users u on u.id = s.user_id where u.id is null');
        assert.deepEqual(sessionsWithoutUser, [], 'no session without its account');
        // A kill between the profile and the account leaves a profile alone (by design: it signs in
        // nobody and the next signup for its address replaces it, src/auth/flows/signup.ts).
        const accounts = new Set(users);
        t.diagnostic(`${acknowledged.length} signups answered 201, ${users.length} accounts, ${[...profiles].filter((id) => !accounts.has(id)).length} profiles without an account, ${orgs.length} orgs`);
      } finally {
        await query.close();
      }
    });
  });
}

async function opener(store: StoreKind, dataDir: string, env: Record<string, string>): Promise<Query & { close(): Promise<void> }> {
  if (store === 'sqlite') {
    const dbs = { main: new Database(join(dataDir, 'rampart.db'), { readonly: true }), pii: new Database(join(dataDir, 'pii.db'), { readonly: true }) };
    return Object.assign(async (s: 'main' | 'pii', sql: string) => dbs[s].prepare(sql).all() as Array<Record<string, unknown>>, {
      async close() {
        dbs.main.close();
        dbs.pii.close();
      },
    });
  }
  const clients = { main: new pg.Client({ connectionString: env['DATABASE_URL'] }), pii: new pg.Client({ connectionString: env['PII_DATABASE_URL'] }) };
  await clients.main.connect();
  await clients.pii.connect();
  return Object.assign(async (s: 'main' | 'pii', sql: string) => (await clients[s].query(sql)).rows as Array<Record<string, unknown>>, {
    async close() {
      await clients.main.end();
      await clients.pii.end();
    },
  });
}
