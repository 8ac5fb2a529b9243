import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { type RunningServer, startServer } from '../../src/server.js';
import { TestClient } from './client.js';
import { createPgSchema, type PgSchema } from './pg.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface TestServerOptions {
  store?: StoreKind;
  /** Extra environment (config) values. */
  env?: Record<string, string>;
  clock?: ManualClock;
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
}

export interface TestServer {
  server: RunningServer;
  url: string;
  clock: ManualClock;
  dataDir: string;
  /** The configuration environment it runs with (for the CLI against the same stores). */
  env: Record<string, string>;
  /** Every log line the server wrote, for "no secret in logs" checks. */
  logs: string[];
  ca: string | null;
  client(): TestClient;
  close(options?: { keepData?: boolean }): Promise<void>;
}

/**
 * Test servers get generous request limits and login back-off by default: test files
 * sign up and log in many users from 127.0.0.1 within a minute. Rate-limit and
 * back-off tests opt into tight values through `env`.
 */
export const GENEROUS_LIMITS: Readonly<Record<string, string>> = {
  RATE_LIMIT_ANON_PER_MINUTE: '1000000',
  RATE_LIMIT_AUTH_PER_MINUTE: '1000000',
  RATE_LIMIT_ACCOUNT_PER_MINUTE: '1000000',
  LOGIN_BACKOFF_AFTER_FAILURES: '1000000',
  LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '1000000',
  SIGNUP_EMAIL_TAKEN_PER_HOUR: '1000000',
};

/** Starts a real server on a free loopback port over real HTTPS, with a manual clock. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'rampart-test-'));
  const schemas: PgSchema[] = [];
  try {
    return await startIn(dataDir, schemas, options);
  } catch (error) {
    // A start-up that fails leaves nothing behind: no schema, no temporary directory.
    for (const schema of schemas) await schema.drop().catch(() => undefined);
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function startIn(dataDir: string, schemas: PgSchema[], options: TestServerOptions): Promise<TestServer> {
  // METRICS_PORT 0: every test server gets its own free metrics port.
  const env: Record<string, string> = { RAMPART_PORT: '0', RAMPART_DATA_DIR: dataDir, LOG_LEVEL: 'info', METRICS_PORT: '0', ...GENEROUS_LIMITS, ...options.env };
  if (options.store === 'postgres') {
    schemas.push(await createPgSchema('main'));
    schemas.push(await createPgSchema('pii'));
    env['DATABASE_URL'] = schemas[0]!.url;
    env['PII_DATABASE_URL'] = schemas[1]!.url;
  }
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({ env, flags: {} });
  const clock = options.clock ?? new ManualClock(Date.now());
  const server = await startServer(config, createLogger(config.logLevel, sink), { clock });
  const ca = config.insecurePlainHttpOnLoopback ? null : readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8');
  const clients: TestClient[] = [];
  return {
    server,
    url: server.url,
    clock,
    dataDir,
    env,
    logs,
    ca,
    client() {
      const client = new TestClient(server.url, ca);
      clients.push(client);
      return client;
    },
    async close(closeOptions = {}) {
      for (const client of clients) client.close();
      await server.close();
      for (const schema of schemas) await schema.drop();
      if (!closeOptions.keepData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let counter = 0;

/** A fresh address per call: tests never collide on email. */
export function uniqueEmail(label = 'user'): string {
  counter++;
  return `${label}.${process.pid}.${counter}.${Math.random().toString(36).slice(2, 8)}@example.com`;
}

/** A password zxcvbn scores 4 that contains nothing of the user. */
export function strongPassword(): string {
  return `violet-Tractor-${Math.random().toString(36).slice(2, 8)}-harbor-Quill`;
}

/** Signs up a user with a fresh client; returns the client (signed in) and the credentials. */
export async function signUp(test: TestServer, label = 'user'): Promise<{ client: TestClient; email: string; password: string; userId: string }> {
  const client = test.client();
  const email = uniqueEmail(label);
  const password = strongPassword();
  const response = await client.post('/v1/signup', { email, password, name: `Test ${label}` });
  if (response.status !== 201) throw new Error(`signup failed: ${response.status} ${response.text}`);
  return { client, email, password, userId: response.body.user.id };
}
