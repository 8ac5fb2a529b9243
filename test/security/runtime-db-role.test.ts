/**
 * Threat: whoever takes over the running server (or its database credentials) rewrites the
 * audit log. The append-only triggers stop a bug, not the schema's owner, who can drop them;
 * and `serve` migrates at start, so by default it runs as that owner (ASVS V13.2.2). With
 * MIGRATE_ON_START=false the server runs as a role without DDL rights, granted as the README
 * shows ("A runtime role without DDL rights"): it serves, appends to the audit log, and can
 * neither change nor delete an event, nor authorize a prune, nor drop the triggers. Against
 * real PostgreSQL, with a role made for the test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { rampartWith } from '../helpers/cli.js';
import { signUp, startTestServer } from '../helpers/harness.js';
import { createPgSchema, PG_BASE_URL, type PgSchema } from '../helpers/pg.js';
import { Resources } from '../helpers/resources.js';

/** The README's grants, for one schema. */
function runtimeGrants(schema: string, role: string): string[] {
  return [
    `grant usage on schema "${schema}" to "${role}"`,
    `grant select, insert, update, delete on all tables in schema "${schema}" to "${role}"`,
    `grant usage, select on all sequences in schema "${schema}" to "${role}"`,
    `revoke insert, update, delete on "${schema}".kysely_migration, "${schema}".kysely_migration_lock from "${role}"`,
  ];
}

const AUDIT_REVOKES = (schema: string, role: string) => [
  `revoke update, delete on "${schema}".audit_events, "${schema}".audit_event_orgs from "${role}"`,
  `revoke insert, update, delete on "${schema}".audit_prune_permit from "${role}"`,
];

async function asSuperuser(statements: string[], url = PG_BASE_URL): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

function withUser(url: string, user: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = '';
  return parsed.toString();
}

describe('a runtime database role without DDL rights (PostgreSQL)', () => {
  const open = new Resources();
  const role = `rampart_app_${randomBytes(4).toString('hex')}`;
  let main: PgSchema;
  let pii: PgSchema;
  let dataDir: string;
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'rampart-role-'));
    open.defer(() => rmSync(dataDir, { recursive: true, force: true }));
    await asSuperuser([`create role "${role}" login`]);
    open.defer(() => asSuperuser([`drop role if exists "${role}"`]));
    main = open.add(await createPgSchema('role_main'), (schema) => schema.drop());
    pii = open.add(await createPgSchema('role_pii'), (schema) => schema.drop());
  });
  after(() => open.close());

  test('MIGRATE_ON_START=false refuses a schema that is behind, then serves as the runtime role, which cannot touch the audit log', async () => {
    const runtimeEnv = { DATABASE_URL: withUser(main.url, role), PII_DATABASE_URL: withUser(pii.url, role), MIGRATE_ON_START: 'false' };
    await assert.rejects(startTestServer({ dataDir, env: runtimeEnv }), /the main store's schema is behind this version \(\d+ migrations pending, first 2026-11-29-001-foundation\): run `rampart migrate` as the schema's owner/);

    // The owner migrates; the runtime role gets the README's grants.
    const migrated = await rampartWith({ RAMPART_DATA_DIR: dataDir, DATABASE_URL: main.url, PII_DATABASE_URL: pii.url }, 'migrate');
    assert.equal(migrated.code, 0, migrated.stderr);
    await asSuperuser([...runtimeGrants(main.schema, role), ...AUDIT_REVOKES(main.schema, role), ...runtimeGrants(pii.schema, role)]);

    const t = open.add(await startTestServer({ dataDir, env: runtimeEnv }), (server) => server.close({ keepData: true }));
    const user = await signUp(t, 'runtime-role');
    assert.equal((await t.client().post('/v1/login', { email: user.email, password: user.password })).status, 200);
    assert.equal((await t.server.services.audit.verify()).valid, true);

    const client = new pg.Client({ connectionString: runtimeEnv.DATABASE_URL });
    await client.connect();
    try {
      const refused = async (statement: string) => {
        await assert.rejects(client.query(statement), (error: { code?: string }) => {
          assert.ok(['42501', '42809'].includes(String(error.code)) || /must be owner|permission denied/.test(String(error)), `${statement}: ${String(error)}`);
          return true;
        }, statement);
      };
      assert.ok(Number((await client.query('select count(*) as n from audit_events')).rows[0].n) > 0, 'it reads the log');
      await refused(`update audit_events set action = 'login.failed'`);
      await refused('delete from audit_events');
      await refused('truncate audit_events');
      await refused('insert into audit_prune_permit (id) values (1)');
      await refused('drop trigger audit_events_append_only on audit_events');
      await refused('alter table audit_events disable trigger all');
      await refused('drop table audit_events');
      await refused('create table intruder (id int)');
    } finally {
      await client.end();
    }
  });
});
