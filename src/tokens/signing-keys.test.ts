import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createPgSchema } from '../../test/helpers/pg.js';
import { ManualClock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../logger.js';
import { createServices } from '../services.js';
import { SigningKeyRepository } from '../store/repositories/signing-keys.js';
import { SigningKeyService } from './signing-keys.js';

const DAY = 86_400_000;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`signing keys: two instances share one key table (${store})`, () => {
    test('a scheduled rotation due on two instances at once makes one new key; retired private keys are destroyed', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rampart-keys-'));
      const env: Record<string, string> = { RAMPART_DATA_DIR: dir, LOG_LEVEL: 'silent' };
      const schemas = store === 'postgres' ? [await createPgSchema('main'), await createPgSchema('pii')] : [];
      if (schemas.length) {
        env['DATABASE_URL'] = schemas[0]!.url;
        env['PII_DATABASE_URL'] = schemas[1]!.url;
      }
      const clock = new ManualClock();
      const services = await createServices(loadConfig({ env, flags: {} }), createLogger('silent'), { clock });
      try {
        const a = services.signingKeys;
        // A second instance: its own cache over the same table.
        const b = new SigningKeyService(new SigningKeyRepository(services.stores.main.db), services.stores.main.db, services.keys, services.events, clock, {
          rotationIntervalMs: 30 * DAY, maxTokenLifetimeMs: 600_000,
        });
        const first = (await a.signingKey()).kid;
        assert.equal((await b.signingKey()).kid, first, 'the second instance uses the existing key');
        clock.advance(30 * DAY);
        const [fromA, fromB] = await Promise.all([a.signingKey(), b.signingKey()]);
        const rows = await services.stores.main.db.selectFrom('signing_keys').selectAll().orderBy('created_at').execute();
        assert.equal(rows.length, 2, 'one new key, not two');
        assert.equal(fromA.kid, rows[1]!.kid);
        assert.equal(fromB.kid, rows[1]!.kid);
        assert.equal(rows[0]!.private_key_wrapped, null, 'the retired private key is destroyed');
        assert.ok(rows[1]!.private_key_wrapped && !rows[1]!.private_key_wrapped.includes('PRIVATE'), 'the current one is stored wrapped');
        assert.deepEqual((await a.jwks()).keys.map((key) => key.kid).sort(), [rows[0]!.kid, rows[1]!.kid].sort());
        clock.advance(a.publishAfterRetirementMs);
        assert.deepEqual((await a.jwks()).keys.map((key) => key.kid), [rows[1]!.kid]);
        await a.rotate('manual');
        const kids = (await services.stores.main.db.selectFrom('signing_keys').select('kid').execute()).map((row) => row.kid);
        assert.ok(!kids.includes(rows[0]!.kid), 'keys past their publication window are deleted at the next rotation');
      } finally {
        await services.close();
        for (const schema of schemas) await schema.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
