import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { ManualClock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { RampartError } from '../errors.js';
import { createLogger } from '../logger.js';
import { createServices, type Services } from '../services.js';
import { ApiTokenRepository } from '../store/repositories/api-tokens.js';
import type { MainDB } from '../store/schema.js';
import { ApiTokenService } from './api-token-service.js';

/**
 * Threat: an attacker (or a secret scanner's false positive) floods the API
 * with made-up tokens to load the database. The checksum must refuse them with
 * no SQL at all. Proof: the service runs over a repository bound to a real
 * SQLite connection whose every query is counted, wrapped by a spy that counts
 * every repository call; a bad-checksum token must cause neither.
 */
describe('API token service: a bad checksum is refused before any lookup', () => {
  let dir: string;
  let services: Services;
  let counting: Kysely<MainDB>;
  let service: ApiTokenService;
  let sqlQueries = 0;
  const repositoryCalls: string[] = [];
  const clock = new ManualClock();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-tok-'));
    const config = loadConfig({ env: { RAMPART_DATA_DIR: dir, LOG_LEVEL: 'silent' }, flags: {} });
    services = await createServices(config, createLogger('silent'), { clock });
    counting = new Kysely<MainDB>({
      dialect: new SqliteDialect({ database: new Database(services.stores.main.location) }),
      log: () => void sqlQueries++,
    });
    const real = new ApiTokenRepository(counting);
    const spy = new Proxy(real, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          repositoryCalls.push(String(property));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    service = new ApiTokenService(spy, counting, services.keyring, services.pii, services.policies, services.events, clock, { allowEternalTokens: false }, () => undefined);
  });

  after(async () => {
    await counting.destroy();
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('bad checksum: invalid_token_format, zero repository calls, zero SQL', async () => {
    const userId = 'usr_unit';
    await services.users.insert({ id: userId, status: 'active', password_hash: 'x', password_changed_at: 0, email_verified: 0, mfa_enabled: 0, created_at: 0, updated_at: 0 });
    const { token } = await service.create({ userId, name: 'ci', scopes: ['profile:read'] }, { ip: '127.0.0.1', userAgent: null });
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const typo = token.slice(0, -1) + last;

    repositoryCalls.length = 0;
    sqlQueries = 0;
    await assert.rejects(service.authenticate(typo, { ip: '127.0.0.1', userAgent: null }), (error: unknown) => error instanceof RampartError && error.code === 'invalid_token_format');
    await assert.rejects(service.authenticate('rpat_short', { ip: '127.0.0.1', userAgent: null }), RampartError);
    assert.deepEqual(repositoryCalls, []);
    assert.equal(sqlQueries, 0);
    assert.equal(await service.peek(typo), null);
    assert.equal(sqlQueries, 0);

    // Control: the counters do see a real lookup.
    const row = await service.authenticate(token, { ip: '127.0.0.1', userAgent: null });
    assert.equal(row?.user_id, userId);
    assert.ok((repositoryCalls as string[]).includes('findByHash'));
    assert.ok(sqlQueries >= 1);
  });
});
