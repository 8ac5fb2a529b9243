import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { createServices, type Services } from '../../src/services.js';
import { GENEROUS_LIMITS, type StoreKind } from './harness.js';
import { createPgSchema, type PgSchema } from './pg.js';

export interface TestServices {
  services: Services;
  clock: ManualClock;
  dataDir: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** The composition root without HTTP, on a fresh SQLite dir or fresh PostgreSQL schemas. */
export async function startTestServices(options: { store?: StoreKind; env?: Record<string, string> } = {}): Promise<TestServices> {
  const clock = new ManualClock(Date.now());
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-svc-'));
  const schemas: PgSchema[] = [];
  const env: Record<string, string> = { RAMPART_DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...GENEROUS_LIMITS, ...options.env };
  let services: Services;
  try {
    if (options.store === 'postgres') {
      schemas.push(await createPgSchema('main'));
      schemas.push(await createPgSchema('pii'));
      env['DATABASE_URL'] = schemas[0]!.url;
      env['PII_DATABASE_URL'] = schemas[1]!.url;
    }
    const config = loadConfig({ env, flags: {} });
    const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
    services = await createServices(config, createLogger('silent', sink), { clock });
  } catch (error) {
    // A start-up that fails leaves nothing behind: no schema, no temporary directory.
    for (const schema of schemas) await schema.drop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    services,
    clock,
    dataDir,
    env,
    async close() {
      await services.close();
      for (const schema of schemas) await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
