import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parseMasterKeyFile } from '../../src/crypto/master-key-file.js';
import { signUp, startTestServer } from '../helpers/harness.js';

function cli(args: string[]) {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('RAMPART_')) env[key] = value;
  return spawnSync(process.execPath, [resolve('bin/rampart.js'), ...args], { env, encoding: 'utf8', timeout: 120_000 });
}

test('master key rotation re-wraps every data key while the server keeps serving, then retires the old key', async () => {
  const t = await startTestServer();
  try {
    const alice = await signUp(t, 'rotate-a');
    const keyFile = join(t.dataDir, 'keys', 'master.key');
    const [oldKey] = parseMasterKeyFile(readFileSync(keyFile, 'utf8'));

    const rotated = cli(['keys', 'rotate-master', '--data-dir', t.dataDir]);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.match(rotated.stdout, /pii_users\.wrapped_dek: \d+ re-wrapped/);
    const afterRotation = parseMasterKeyFile(readFileSync(keyFile, 'utf8'));
    assert.equal(afterRotation.length, 2);
    const newId = afterRotation[0]!.id;
    assert.notEqual(newId, oldKey!.id);

    // Every wrapped value now names the new key.
    const dek = await t.server.services.stores.pii.db.selectFrom('pii_users').select('wrapped_dek').where('user_id', '=', alice.userId).executeTakeFirstOrThrow();
    assert.ok(dek.wrapped_dek.startsWith(`${newId}.`));
    for (const column of t.server.services.wrappedKeys) {
      const counts = await column.countByKeyId();
      assert.deepEqual([...counts.keys()].filter((id) => id !== newId), [], `${column.name} fully re-wrapped`);
    }

    // The running server (which loaded only the old key) keeps working: it re-reads the file.
    assert.equal((await alice.client.get('/v1/session')).status, 200);
    assert.equal((await t.client().post('/v1/login', { email: alice.email, password: alice.password })).status, 200);
    const bob = await signUp(t, 'rotate-b');
    const bobDek = await t.server.services.stores.pii.db.selectFrom('pii_users').select('wrapped_dek').where('user_id', '=', bob.userId).executeTakeFirstOrThrow();
    assert.ok(bobDek.wrapped_dek.startsWith(`${newId}.`), 'new data keys are wrapped with the new master key');

    const retired = cli(['keys', 'rotate-master', '--retire', '--data-dir', t.dataDir]);
    assert.equal(retired.status, 0, retired.stderr);
    const final = parseMasterKeyFile(readFileSync(keyFile, 'utf8'));
    assert.equal(final.length, 1, 'old keys retired');
    assert.ok(!final.some((k) => k.id === oldKey!.id || k.id === newId));
    assert.equal((await alice.client.get('/v1/session')).status, 200);
    assert.equal((await t.client().post('/v1/login', { email: bob.email, password: bob.password })).status, 200);
  } finally {
    await t.close();
  }
});
