/**
 * Threat: second-factor secrets leaking through logs or a stolen database.
 *
 * Attack: someone reads the log pipeline (a SIEM, a support bundle) or a copy
 * of the database files (a backup, a stolen disk). If a TOTP seed, a recovery
 * code, an mfaToken or a code is there in clear, the second factor is theirs.
 * The seed is sealed with the user's data key, recovery codes and mfaTokens
 * are kept as keyed/plain hashes, request bodies are never logged and the
 * logger redacts these fields (ASVS V16.2.5, V14.1.1). We run every flow with
 * canaries at trace level, then search every log line and every byte of the
 * SQLite files (WAL included) for them in every encoding.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { Secret } from 'otpauth';
import { normalizeRecoveryCode } from '../../src/auth/mfa/recovery-codes.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { nextStep, passwordStep, stepUp, totpNow } from '../helpers/mfa.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';

/** Every row of every table of a PostgreSQL store, as text. */
async function dumpPostgres(db: Kysely<any>): Promise<string> {
  const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = current_schema()`.execute(db);
  let out = '';
  for (const { table_name: table } of tables.rows) out += JSON.stringify((await sql`select * from ${sql.table(table)}`.execute(db)).rows);
  return out;
}

for (const store of ['sqlite', 'postgres'] as const) describe(`second-factor secrets never in logs or in the database in clear (${store})`, () => {
  let t: TestServer;
  const canaries = new Set<string>();

  function addSecret(secret: string) {
    const bytes = Buffer.from(Secret.fromBase32(secret).bytes);
    for (const form of [secret, secret.toLowerCase(), bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('latin1')]) canaries.add(form);
  }
  function addCode(code: string) {
    canaries.add(code);
    canaries.add(code.replaceAll('-', ''));
    canaries.add(normalizeRecoveryCode(code)!);
  }

  before(async () => {
    t = await startTestServer({ store, env: { LOG_LEVEL: 'trace' } });
    const { client, email, password } = await signUp(t, 'canary');
    await stepUp(client, password);
    const start = await client.post('/v1/me/mfa/totp');
    addSecret(start.body.secret);
    const enrollmentCode = totpNow(t, start.body.secret);
    const confirm = await client.post('/v1/me/mfa/totp/confirm', { code: enrollmentCode });
    confirm.body.recoveryCodes.forEach(addCode);
    nextStep(t);

    // Failed and successful logins with each kind of proof.
    const step = await passwordStep(t.client(), email, password);
    canaries.add(step.mfaToken);
    await t.client().post('/v1/login/mfa', { mfaToken: step.mfaToken, recoveryCode: '0000-0000-0000-0000-0000-0000' });
    const code = totpNow(t, start.body.secret);
    await t.client().post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: code });
    await t.client().post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: code });
    nextStep(t);
    const second = await passwordStep(t.client(), email, password);
    canaries.add(second.mfaToken);
    await t.client().post('/v1/login/mfa', { mfaToken: second.mfaToken, recoveryCode: confirm.body.recoveryCodes[0] });
    await client.post('/v1/me/reauth', { totp: totpNow(t, start.body.secret) });
    const regenerated = await client.post('/v1/me/mfa/recovery-codes');
    regenerated.body.recoveryCodes.forEach(addCode);

    // WebAuthn, with a personal name for the key.
    const options = (await client.post('/v1/me/mfa/webauthn/options')).body;
    const key = new SoftwareAuthenticator(t.server.services.publicUrl);
    await client.post('/v1/me/mfa/webauthn', { name: 'Canary Kestrel phone', response: key.register(options) });
    canaries.add('Canary Kestrel phone');

    // A login left waiting at its second step, and a pending enrollment (a second user).
    canaries.add((await passwordStep(t.client(), email, password)).mfaToken);
    const other = await signUp(t, 'canary2');
    await stepUp(other.client, other.password);
    addSecret((await other.client.post('/v1/me/mfa/totp')).body.secret);
  });
  after(async () => {
    await t.close();
  });

  test('no canary in any log line (trace level)', () => {
    assert.ok(t.logs.length > 20, 'the server logged');
    for (const line of t.logs) {
      for (const canary of canaries) {
        if (/^[0-9]{6}$/.test(canary)) continue; // 6-digit codes: checked below as quoted values
        assert.ok(!line.includes(canary), `log line leaks a secret: ${line.slice(0, 200)}`);
      }
    }
    const codes = [...canaries].filter((c) => /^[0-9]{6}$/.test(c));
    for (const line of t.logs) for (const code of codes) assert.ok(!line.includes(`"${code}"`) && !line.includes(`=${code}`), 'a TOTP code in the log');
  });

  test('no canary in any byte of the SQLite files, WAL included', { skip: store !== 'sqlite' }, () => {
    const files = readdirSync(t.dataDir).filter((name) => /\.db(-wal|-shm)?$/.test(name));
    assert.ok(files.includes('rampart.db') && files.includes('pii.db'));
    for (const file of files) {
      const bytes = readFileSync(join(t.dataDir, file));
      const text = bytes.toString('latin1');
      for (const canary of canaries) {
        if (/^[0-9]{6}$/.test(canary)) continue; // 6 digits occur in any binary file by chance
        assert.ok(!text.includes(canary) && !bytes.includes(Buffer.from(canary, 'utf8')), `${file} holds a secret in clear`);
      }
    }
  });

  test('no canary in any row of any table of either PostgreSQL store', { skip: store !== 'postgres' }, async () => {
    const dump = (await dumpPostgres(t.server.services.stores.main.db)) + (await dumpPostgres(t.server.services.stores.pii.db));
    assert.ok(dump.includes('mfa_') || dump.length > 1000, 'the dump has content');
    for (const canary of canaries) {
      if (/^[0-9]{6}$/.test(canary)) continue;
      assert.ok(!dump.includes(canary), 'a secret is stored in clear');
    }
  });

  test('the stored forms are a sealed seed, hashed codes and tokens', async () => {
    const db = t.server.services.stores.main.db;
    const totp = await db.selectFrom('mfa_totp').selectAll().execute();
    assert.equal(totp.length, 2);
    assert.ok((await db.selectFrom('mfa_login_tokens').select('token_hash').execute()).every((row) => /^[0-9a-f]{64}$/.test(row.token_hash)));
    for (const row of totp) assert.match(row.secret_enc, /^[A-Za-z0-9_-]{60,}$/, 'AES-GCM ciphertext');
    const codes = await db.selectFrom('mfa_recovery_codes').select('code_hash').execute();
    assert.equal(codes.length, 10);
    for (const row of codes) assert.match(row.code_hash, /^[A-Za-z0-9_-]{43}$/, 'HMAC-SHA256');
    const credential = await db.selectFrom('mfa_webauthn_credentials').select(['name_enc', 'public_key']).executeTakeFirstOrThrow();
    assert.ok(!credential.name_enc.includes('Canary'));
  });
});
