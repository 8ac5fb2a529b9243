import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL server CI provides (trust auth, database "test"). */
export const PG_BASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PgSchema {
  /** Connection URL whose search_path is the fresh schema. */
  url: string;
  schema: string;
  drop(): Promise<void>;
}

/** A fresh schema per test run, so parallel runs and files never collide. */
export async function createPgSchema(label = 't'): Promise<PgSchema> {
  const schema = `${label}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_BASE_URL });
  await client.connect();
  try {
    await client.query(`create schema "${schema}"`);
  } finally {
    await client.end();
  }
  const url = new URL(PG_BASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
    async drop() {
      const dropper = new pg.Client({ connectionString: PG_BASE_URL });
      await dropper.connect();
      try {
        await dropper.query(`drop schema "${schema}" cascade`);
      } finally {
        await dropper.end();
      }
    },
  };
}
