import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hash as argon2Hash } from '@node-rs/argon2';
import bcrypt from 'bcrypt';
import { randomId } from '../../src/crypto/random.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { createPgSchema } from '../helpers/pg.js';
import { Resources } from '../helpers/resources.js';

const BIN = resolve('bin/rampart.js');

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('RAMPART_') && !['DATABASE_URL', 'PII_DATABASE_URL', 'PUBLIC_URL'].includes(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Another system's users: passwords we know, hashes made by the `bcrypt` package and by argon2 with weak parameters. */
const PASSWORDS = {
  bcrypt: 'imported-bcrypt-violet-harbor',
  bcrypt2y: 'imported-php-bcrypt-quill-tractor',
  argon2i: 'imported-weak-argon2-mango-river',
  // 80 ASCII characters: bcrypt only ever saw the first 72.
  long: 'long-passphrase-that-goes-on-and-on-past-the-bcrypt-limit-of-seventy-two-bytes!',
};

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`rampart users import (${store})`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rampart-import-'));
    const file = join(dataDir, 'users.jsonl');
    const env: Record<string, string> = { RAMPART_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const open = new Resources();
    open.defer(() => rmSync(dataDir, { recursive: true, force: true }));
    const stamp = `${process.pid}.${Date.now()}.${store}`;
    const email = (label: string) => `${label}.${stamp}@example.com`;
    let result: ReturnType<typeof spawnSync>;
    let t: TestServer;
    let secretHash = '';

    before(async () => {
      if (store === 'postgres') {
        const main = open.add(await createPgSchema('imain'), (schema) => schema.drop());
        const pii = open.add(await createPgSchema('ipii'), (schema) => schema.drop());
        env['DATABASE_URL'] = main.url;
        env['PII_DATABASE_URL'] = pii.url;
      }
      const bcryptHash = await bcrypt.hash(PASSWORDS.bcrypt, 4);
      const phpHash = (await bcrypt.hash(PASSWORDS.bcrypt2y, 4)).replace(/^\$2b\$/, '$2y$');
      const weakArgon = await argon2Hash(PASSWORDS.argon2i, { algorithm: 1, memoryCost: 8192, timeCost: 1, parallelism: 1 });
      const longHash = await bcrypt.hash(PASSWORDS.long, 4);
      secretHash = await bcrypt.hash('never-printed-anywhere', 4);
      const lines = [
        JSON.stringify({ email: email('bcrypt'), name: 'Bea Crypt', passwordHash: bcryptHash }),
        JSON.stringify({ email: email('php'), name: null, passwordHash: phpHash }),
        JSON.stringify({ email: email('argon'), passwordHash: weakArgon }),
        JSON.stringify({ email: email('long'), name: 'Lon Gest', passwordHash: longHash }),
        JSON.stringify({ email: email('bad'), name: 'Bad Hash', passwordHash: `${secretHash.slice(0, 20)}!!` }),
        '{"email": "broken json',
        JSON.stringify({ email: email('bcrypt'), name: 'Duplicate', passwordHash: bcryptHash }),
        JSON.stringify({ email: email('md5'), passwordHash: '5f4dcc3b5aa765d61d8327deb882cf99' }),
        '',
      ];
      writeFileSync(file, lines.join('\n'));
      // The fixtures' bcrypt hashes are cost 4 (fast to make): imported under the explicit option.
      result = spawnSync(process.execPath, [BIN, 'users', 'import', '--accept-weak-bcrypt', file], { env: cleanEnv(env), encoding: 'utf8', timeout: 120_000 });
      t = open.add(
        await startTestServer({ dataDir, env: store === 'postgres' ? { DATABASE_URL: env['DATABASE_URL']!, PII_DATABASE_URL: env['PII_DATABASE_URL']! } : {} }),
        (server) => server.close(),
      );
    });
    after(() => open.close());

    test('imports the good lines, skips known addresses, reports bad lines by number without their hash', () => {
      assert.equal(result.status, 1, `exit code (stderr: ${String(result.stderr)})`);
      assert.match(String(result.stdout), /imported 4, skipped 1 \(already there\), failed 3/);
      const stderr = String(result.stderr);
      assert.match(stderr, /line 5: passwordHash is not a well-formed bcrypt hash/);
      assert.match(stderr, /line 6: not valid JSON/);
      assert.match(stderr, /line 7: an account with this email already exists/);
      assert.match(stderr, /line 8: passwordHash must be bcrypt/);
      assert.ok(!stderr.includes(secretHash.slice(0, 20)) && !stderr.includes('5f4dcc3b'), 'no hash is ever printed');
    });

    test('an imported bcrypt hash (made by the bcrypt package) verifies and becomes argon2id at the first login', async () => {
      const services = t.server.services;
      const userId = (await services.pii.findUserIdByEmail(email('bcrypt')))!;
      assert.match((await services.users.findById(userId))!.password_hash, /^\$2b\$04\$/);
      const login = await t.client().post('/v1/login', { email: email('bcrypt'), password: PASSWORDS.bcrypt });
      assert.equal(login.status, 200);
      assert.equal(login.body.user.name, 'Bea Crypt');
      const upgraded = (await services.users.findById(userId))!.password_hash;
      assert.match(upgraded, new RegExp(`^\\$argon2id\\$v=19\\$m=${services.config.argon2MemoryKiB},t=${services.config.argon2Iterations},p=1\\$`));
      assert.equal((await t.client().post('/v1/login', { email: email('bcrypt'), password: PASSWORDS.bcrypt })).status, 200, 'works after the upgrade');
      assert.equal((await t.client().post('/v1/login', { email: email('bcrypt'), password: `${PASSWORDS.bcrypt}x` })).status, 401);
      const audit = await services.stores.main.db.selectFrom('audit_events').select('action').where('user_id', '=', userId).execute();
      assert.ok(audit.some((event) => event.action === 'password.rehashed'));
      assert.ok(audit.some((event) => event.action === 'user.created'));
    });

    test('$2y$ hashes and argon2 hashes weaker than ours are upgraded too', async () => {
      const services = t.server.services;
      for (const [label, password] of [['php', PASSWORDS.bcrypt2y], ['argon', PASSWORDS.argon2i]] as const) {
        const userId = (await services.pii.findUserIdByEmail(email(label)))!;
        assert.equal((await t.client().post('/v1/login', { email: email(label), password })).status, 200, label);
        assert.match((await services.users.findById(userId))!.password_hash, new RegExp(`^\\$argon2id\\$v=19\\$m=${services.config.argon2MemoryKiB},`), label);
      }
    });

    test('a password longer than 72 bytes is never checked against a bcrypt hash (no silent truncation)', async () => {
      const services = t.server.services;
      const userId = (await services.pii.findUserIdByEmail(email('long')))!;
      const full = await t.client().post('/v1/login', { email: email('long'), password: PASSWORDS.long });
      assert.equal(full.status, 401, 'the 80-byte password is refused: bcrypt would only compare its first 72 bytes');
      assert.equal(full.body.code, 'invalid_credentials');
      const padded = await t.client().post('/v1/login', { email: email('long'), password: `${PASSWORDS.long.slice(0, 72)}-anything-after` });
      assert.equal(padded.status, 401, 'whatever follows the 72nd byte would have matched under truncation');
      assert.match((await services.users.findById(userId))!.password_hash, /^\$2b\$/, 'nothing was rehashed');
      // The user resets instead; argon2id then verifies the whole password.
      assert.equal(await services.hasher.verify((await services.users.findById(userId))!.password_hash, PASSWORDS.long).then((r) => r.valid), false);
    });

    test('a bcrypt hash of cost below 10 is refused at rest unless --accept-weak-bcrypt; cost 10 is imported as is (ASVS 5.0 Appendix C)', async () => {
      const weak = await bcrypt.hash('weak-cost-import-heron-basalt', 9);
      const sound = await bcrypt.hash('sound-cost-import-walrus-cinder', 10);
      const costs = join(dataDir, 'costs.jsonl');
      writeFileSync(costs, [JSON.stringify({ email: email('cost9'), passwordHash: weak }), JSON.stringify({ email: email('cost10'), passwordHash: sound })].join('\n'));
      const refused = spawnSync(process.execPath, [BIN, 'users', 'import', costs], { env: cleanEnv(env), encoding: 'utf8', timeout: 120_000 });
      assert.equal(refused.status, 1, String(refused.stderr));
      assert.match(String(refused.stdout), /imported 1, skipped 0 \(already there\), failed 1/);
      assert.match(String(refused.stderr), /line 1: bcrypt cost 9 is below 10 \(ASVS 5\.0 Appendix C\), too cheap to keep at rest; import with --accept-weak-bcrypt/);
      assert.ok(!String(refused.stderr).includes(weak.slice(7)), 'no hash is printed');
      assert.equal(await t.server.services.pii.findUserIdByEmail(email('cost9')), null);
      assert.equal((await t.client().post('/v1/login', { email: email('cost10'), password: 'sound-cost-import-walrus-cinder' })).status, 200);
      const accepted = spawnSync(process.execPath, [BIN, 'users', 'import', '--accept-weak-bcrypt', costs], { env: cleanEnv(env), encoding: 'utf8', timeout: 120_000 });
      assert.match(String(accepted.stdout), /imported 1, skipped 1 \(already there\), failed 0/);
      assert.equal(accepted.status, 0, String(accepted.stderr));
    });

    test('an address held by a profile without an account (a crash between the stores) is imported once that profile is over 10 minutes old; a younger one is reported, not "already there"', async () => {
      const services = t.server.services;
      // What a signup or import killed between its two writes leaves: a profile, no account.
      const orphan = async (label: string, ageMs: number) => {
        const userId = randomId('usr');
        await services.pii.createProfile(userId, email(label), 'Left Behind');
        await services.stores.pii.db.updateTable('pii_users').set({ created_at: Date.now() - ageMs }).where('user_id', '=', userId).execute();
        return userId;
      };
      const oldOrphan = await orphan('orphan-old', 11 * 60_000);
      await orphan('orphan-young', 60_000);
      const password = 'imported-after-a-crash-lantern-fjord';
      const hash = await bcrypt.hash(password, 4);
      const again = join(dataDir, 'again.jsonl');
      writeFileSync(again, [email('orphan-old'), email('orphan-young')].map((address) => JSON.stringify({ email: address, name: 'Back Again', passwordHash: hash })).join('\n'));
      const rerun = spawnSync(process.execPath, [BIN, 'users', 'import', '--accept-weak-bcrypt', again], { env: cleanEnv(env), encoding: 'utf8', timeout: 120_000 });
      assert.equal(rerun.status, 1, String(rerun.stderr));
      assert.match(String(rerun.stdout), /imported 1, skipped 0 \(already there\), failed 1/);
      assert.match(String(rerun.stderr), /line 2: not imported \(the address has a profile without an account, under 10 minutes old/);
      const imported = (await services.pii.findUserIdByEmail(email('orphan-old')))!;
      assert.notEqual(imported, oldOrphan, 'the leftover profile was replaced');
      assert.ok(await services.users.findById(imported), 'by an account with its profile');
      assert.equal((await t.client().post('/v1/login', { email: email('orphan-old'), password })).status, 200);
    });
  });
}
