/**
 * Threat: someone obtains a copy of the database files, a backup, or the logs.
 * They must not find a user's email, name, password or session secret in them:
 * personal data lives only encrypted in the PII store, passwords only as argon2id
 * hashes, session secrets only as SHA-256, and logs redact credentials.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';

interface Secrets {
  email: string;
  name: string;
  password: string;
  sessionSecret: string;
  csrfToken: string;
}

async function createUserAndSecrets(t: TestServer): Promise<Secrets> {
  const client = t.client();
  const email = uniqueEmail('Private.Person');
  const name = 'Zebulon Quaxworth';
  const password = strongPassword();
  const signup = await client.post('/v1/signup', { email, password, name });
  assert.equal(signup.status, 201);
  // Exercise login, session reads and a failed login too, so every path has written its logs.
  await t.client().post('/v1/login', { email, password });
  await t.client().post('/v1/login', { email, password: `${password}x` });
  await client.get('/v1/session');
  return { email, name, password, sessionSecret: client.cookies.get(SESSION_COOKIE)!, csrfToken: signup.body.csrfToken };
}

function assertAbsent(haystack: string, secrets: Secrets, where: string): void {
  for (const [label, value] of Object.entries(secrets)) {
    assert.ok(!haystack.includes(value), `${label} found in ${where}`);
  }
  assert.ok(!haystack.toLowerCase().includes(secrets.email.toLowerCase()), `email (any case) found in ${where}`);
  assert.ok(!haystack.includes(secrets.email.split('@')[0]!), `email local part found in ${where}`);
}

describe('nothing sensitive at rest or in logs (SQLite files)', () => {
  let t: TestServer;
  let secrets: Secrets;
  before(async () => {
    t = await startTestServer();
    secrets = await createUserAndSecrets(t);
  });
  after(async () => {
    await t.close();
  });

  test('the raw main and PII database files (with their WAL) hold no email, name, password or session secret', () => {
    const files = readdirSync(t.dataDir).filter((name) => /\.(db|db-wal|db-shm)$/.test(name));
    assert.ok(files.includes('rampart.db') && files.includes('pii.db'), files.join(','));
    for (const file of files) {
      const raw = readFileSync(join(t.dataDir, file));
      // Search both as UTF-8 text and as the raw bytes of each secret.
      assertAbsent(raw.toString('latin1'), secrets, file);
      assertAbsent(raw.toString('utf8'), secrets, file);
    }
  });

  test('the logs hold no password, session secret, CSRF token, email or name', () => {
    const logs = t.logs.join('\n');
    assert.ok(logs.length > 0, 'the server logged something');
    assertAbsent(logs, secrets, 'logs');
  });
});

describe('nothing sensitive at rest (PostgreSQL)', () => {
  let t: TestServer;
  let secrets: Secrets;
  before(async () => {
    t = await startTestServer({ store: 'postgres' });
    secrets = await createUserAndSecrets(t);
  });
  after(async () => {
    await t.close();
  });

  test('no table of either store holds the secrets in clear', async () => {
    for (const store of [t.server.services.stores.main, t.server.services.stores.pii]) {
      const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = current_schema()`.execute(store.db);
      assert.ok(tables.rows.length > 0);
      for (const { table_name } of tables.rows) {
        const dump = await sql<{ row: string }>`select t::text as row from ${sql.table(table_name)} t`.execute(store.db);
        assertAbsent(dump.rows.map((r) => r.row).join('\n'), secrets, `${store.location} ${table_name}`);
      }
    }
  });
});
