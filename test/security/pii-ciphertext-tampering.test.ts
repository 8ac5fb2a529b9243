/**
 * Threat (ASVS V11.3.3): someone with write access to the PII store (a stolen
 * database credential, a bad restore, a disk fault) changes an encrypted field in
 * place: a flipped byte, a ciphertext moved to another user or field. Personal
 * data is AES-256-GCM with associated data `<userId>:<field>`, so such a value
 * must fail authentication and the read must fail closed: the affected user's
 * requests end in a generic problem body (no plaintext guess, no ciphertext, no
 * key, no stack trace), the failure is logged with an incident id, and every
 * other user is untouched.
 *
 * Why 500 and not 4xx: the client did nothing wrong: the server's own storage is
 * corrupt, which is exactly what `internal_error` (with an incident id for the
 * operator) means. Answering 200 with a missing field would hide tampering.
 *
 * The store is changed through a connection of its own to `data/pii.db`, as
 * another process (an attacker, a restore) would; the server sees such writes
 * within EXTERNAL_POLL_INTERVAL_MS.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { EXTERNAL_POLL_INTERVAL_MS } from '../../src/store/change-feed.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

type Column = 'email_enc' | 'name_enc' | 'wrapped_dek';

/** Flips one bit of the decoded byte at `offset` (negative: from the end) of a base64url value. */
function flipByte(sealed: string, offset: number): string {
  const raw = Buffer.from(sealed, 'base64url');
  const at = offset < 0 ? raw.length + offset : offset;
  raw[at] = raw[at]! ^ 0x01;
  return raw.toString('base64url');
}

describe('tampered PII ciphertext fails closed (ASVS V11.3.3)', () => {
  let t: TestServer;
  let victim: { client: TestClient; email: string; password: string; userId: string };
  let bystander: { client: TestClient; email: string; userId: string };
  let masterKeyFile: string;

  before(async () => {
    t = await startTestServer();
    victim = await signUp(t, 'victim');
    bystander = await signUp(t, 'bystander');
    masterKeyFile = readFileSync(join(t.dataDir, 'keys', 'master.key'), 'utf8');
  });
  after(async () => {
    await t.close();
  });

  async function otherProcess<T>(run: (db: Database.Database) => T): Promise<T> {
    const db = new Database(join(t.dataDir, 'pii.db'));
    try {
      return run(db);
    } finally {
      db.close();
      await new Promise((resolve) => setTimeout(resolve, EXTERNAL_POLL_INTERVAL_MS + 1));
    }
  }

  const read = (column: Column, userId: string) =>
    otherProcess((db) => (db.prepare(`select ${column} as value from pii_users where user_id = ?`).get(userId) as { value: string }).value);
  const write = (column: Column, userId: string, value: string) =>
    otherProcess((db) => db.prepare(`update pii_users set ${column} = ? where user_id = ?`).run(value, userId).changes);

  /** The victim's session read fails with a bare internal_error that is logged, and leaks nothing. */
  async function assertFailsClosed(secrets: string[], what: string): Promise<void> {
    const logsBefore = t.logs.length;
    const response = await victim.client.get('/v1/session');
    assert.equal(response.status, 500, `${what}: ${response.status} ${response.text}`);
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    // RFC 9457 members and the incident id only: nothing about what failed.
    assert.deepEqual(Object.keys(response.body).sort(), ['code', 'detail', 'incidentId', 'status', 'title', 'type']);
    assert.equal(response.body.detail, response.body.title, 'the detail names nothing either');
    assert.equal(response.body.code, 'internal_error');
    assert.equal(response.body.status, 500);
    assert.match(response.body.incidentId, /^[0-9a-f-]{36}$/);
    for (const secret of [...secrets, victim.email, victim.userId, 'Test victim', 'stack', 'at ']) {
      assert.ok(!response.text.includes(secret), `${what}: the body must not carry ${secret.slice(0, 12)}…`);
    }
    // Logged for the operator, under the incident id the client was given; no key material in the log.
    const newLogs = t.logs.slice(logsBefore).join('\n');
    assert.ok(newLogs.includes(response.body.incidentId), `${what}: the incident is logged`);
    for (const line of masterKeyFile.split('\n').filter(Boolean)) {
      assert.ok(!newLogs.includes(line.split(' ')[1]!), `${what}: no master key in the log`);
    }
    for (const secret of secrets) assert.ok(!newLogs.includes(secret), `${what}: no ciphertext or wrapped key in the log`);
    // Everybody else carries on.
    const other = await bystander.client.get('/v1/session');
    assert.equal(other.status, 200, `${what}: bystander ${other.status}`);
    assert.equal(other.body.user.email, bystander.email);
  }

  async function assertRestored(): Promise<void> {
    const response = await victim.client.get('/v1/session');
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.user.email, victim.email);
    assert.equal(response.body.user.name, 'Test victim');
  }

  test('control: the victim reads their profile', async () => {
    await assertRestored();
  });

  // Offsets into version(1) | nonce(12) | tag(16) | ciphertext: each part is authenticated.
  for (const [column, offsets] of [['email_enc', [0, 5, 20, -1]], ['name_enc', [5, 20, -1]], ['wrapped_dek', [3, -1]]] as const) {
    test(`one flipped byte in ${column} (at ${offsets.join(', ')}) fails closed; restoring it heals`, async () => {
      const original = await read(column, victim.userId);
      try {
        for (const offset of offsets) {
          // The wrapped data key is `<master key id>.<sealed>`: flip inside the sealed part.
          const dot = column === 'wrapped_dek' ? original.indexOf('.') + 1 : 0;
          const tampered = original.slice(0, dot) + flipByte(original.slice(dot), offset);
          assert.notEqual(tampered, original);
          assert.equal(await write(column, victim.userId, tampered), 1);
          await assertFailsClosed([original, tampered, original.slice(dot), tampered.slice(dot)], `${column}@${offset}`);
        }
      } finally {
        await write(column, victim.userId, original);
      }
      await assertRestored();
    });
  }

  test("the bystander's email ciphertext moved into the victim's row fails (associated data binds user and field)", async () => {
    const original = await read('email_enc', victim.userId);
    const foreign = await read('email_enc', bystander.userId);
    try {
      await write('email_enc', victim.userId, foreign);
      await assertFailsClosed([original, foreign], 'foreign email');
      // The victim's own name ciphertext in the email column: same key, other field.
      await write('email_enc', victim.userId, await read('name_enc', victim.userId));
      await assertFailsClosed([original], 'name in the email column');
    } finally {
      await write('email_enc', victim.userId, original);
    }
    await assertRestored();
  });

  test('login of the tampered user fails closed too, without a session', async () => {
    const original = await read('email_enc', victim.userId);
    const client = t.client();
    try {
      await write('email_enc', victim.userId, flipByte(original, 20));
      const response = await client.post('/v1/login', { email: victim.email, password: victim.password });
      assert.equal(response.status, 500, response.text);
      assert.ok(response.body.incidentId);
      assert.ok(!response.text.includes(original) && !response.text.includes(victim.email));
      assert.equal(client.cookies.size, 0, 'no session cookie');
    } finally {
      await write('email_enc', victim.userId, original);
    }
    assert.equal((await t.client().post('/v1/login', { email: victim.email, password: victim.password })).status, 200);
  });

  test("a tampered address or user agent sealed in the victim's session row (main store) fails closed, not as \"no value\"", async () => {
    const main = <T>(run: (db: Database.Database) => T) => {
      const db = new Database(join(t.dataDir, 'rampart.db'));
      try {
        return run(db);
      } finally {
        db.close();
      }
    };
    const settle = () => new Promise((resolve) => setTimeout(resolve, EXTERNAL_POLL_INTERVAL_MS + 1));
    // Signed in again with a user agent, so the victim's session row seals both fields.
    const relogin = await victim.client.post('/v1/login', { email: victim.email, password: victim.password }, { headers: { 'user-agent': 'TamperTest/1.0' } });
    assert.equal(relogin.status, 200, relogin.text);
    for (const column of ['ip_enc', 'user_agent_enc'] as const) {
      const rows = main((db) => db.prepare(`select id_hash, ${column} as value from sessions where user_id = ? and ${column} is not null`).all(victim.userId) as Array<{ id_hash: string; value: string }>);
      assert.ok(rows.length > 0, `${column} is sealed in the victim's session row`);
      try {
        main((db) => {
          for (const row of rows) db.prepare(`update sessions set ${column} = ? where id_hash = ?`).run(flipByte(row.value, 20), row.id_hash);
        });
        await settle();
        await assertFailsClosed(rows.map((row) => row.value), `session ${column}`);
      } finally {
        main((db) => {
          for (const row of rows) db.prepare(`update sessions set ${column} = ? where id_hash = ?`).run(row.value, row.id_hash);
        });
        await settle();
      }
      await assertRestored();
    }
  });
});
