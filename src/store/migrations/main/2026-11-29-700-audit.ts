import { type Kysely, PostgresAdapter, sql } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// The hash-chained audit log. `audit_head` is a single row holding the chain's
// head (last seq and hash) and its anchor (first retained seq and the hash it
// links to, moved forward by retention pruning). Appenders update the head row
// first inside their transaction, which serializes them in the database (a row
// lock on PostgreSQL, the write lock on SQLite), never in process memory.
//
// Triggers make the events append-only at the database level: no UPDATE, and a
// DELETE only inside a pruning transaction that holds a row in
// `audit_prune_permit`. Someone with raw database access can still drop them;
// the hash chain is what makes that tampering visible.
export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  // On SQLite an INTEGER PRIMARY KEY is the rowid: appends stay a B-tree append.
  const seqType = postgres ? 'bigint' : 'integer';

  await db.schema
    .createTable('audit_events')
    .addColumn('seq', seqType, (c) => c.primaryKey())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('time', 'bigint', (c) => c.notNull())
    .addColumn('org_id', 'text')
    .addColumn('actor_type', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target_type', 'text')
    .addColumn('target_id', 'text')
    // The user the event concerns (actor or target), for the user's own security feed.
    .addColumn('user_id', 'text')
    // Client address and user agent: personal data, encrypted (AES-256-GCM, keyring purpose "audit").
    .addColumn('ip_enc', 'text')
    .addColumn('user_agent_enc', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_events_org_seq').on('audit_events').columns(['org_id', 'seq']).execute();
  await db.schema.createIndex('audit_events_user_seq').on('audit_events').columns(['user_id', 'seq']).execute();
  await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();

  await db.schema
    .createTable('audit_head')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('first_seq', 'bigint', (c) => c.notNull())
    .addColumn('first_prev_hash', 'text', (c) => c.notNull())
    .execute();
  const genesis = '0'.repeat(64);
  await db.insertInto('audit_head').values({ id: 1, seq: 0, hash: genesis, first_seq: 1, first_prev_hash: genesis }).execute();

  await db.schema.createTable('audit_prune_permit').addColumn('id', 'integer', (c) => c.primaryKey()).execute();

  if (postgres) {
    await sql`
      create function audit_events_append_only() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' and exists (select 1 from audit_prune_permit) then
          return old;
        end if;
        raise exception 'audit events are append-only';
      end
      $$`.execute(db);
    await sql`create trigger audit_events_append_only before update or delete on audit_events
      for each row execute function audit_events_append_only()`.execute(db);
    await sql`create trigger audit_events_no_truncate before truncate on audit_events
      for each statement execute function audit_events_append_only()`.execute(db);
  } else {
    await sql`create trigger audit_events_no_update before update on audit_events
      begin select raise(abort, 'audit events are append-only'); end`.execute(db);
    await sql`create trigger audit_events_no_delete before delete on audit_events
      when not exists (select 1 from audit_prune_permit)
      begin select raise(abort, 'audit events are append-only'); end`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_events').execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`drop function if exists audit_events_append_only()`.execute(db);
  await db.schema.dropTable('audit_prune_permit').execute();
  await db.schema.dropTable('audit_head').execute();
}
