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
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-svc-'));
  const schemas: PgSchema[] = [];
  const env: Record<string, string> = { RAMPART_DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...GENEROUS_LIMITS, ...options.env };
  if (options.store === 'postgres') {
    const main = await createPgSchema('main');
    const pii = await createPgSchema('pii');
    schemas.push(main, pii);
    env['DATABASE_URL'] = main.url;
    env['PII_DATABASE_URL'] = pii.url;
  }
  const config = loadConfig({ env, flags: {} });
  const clock = new ManualClock(Date.now());
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const services = await createServices(config, createLogger('silent', sink), { clock });
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
