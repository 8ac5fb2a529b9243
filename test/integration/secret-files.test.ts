import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { rampartWith } from '../helpers/cli.js';
import { signUp, startTestServer } from '../helpers/harness.js';
import { createPgSchema } from '../helpers/pg.js';

test('DATABASE_URL_FILE and PII_DATABASE_URL_FILE: the server runs on the PostgreSQL stores the files name; doctor checks who can read them', async () => {
  const main = await createPgSchema('secretfile_main');
  const pii = await createPgSchema('secretfile_pii');
  const secrets = mkdtempSync(join(tmpdir(), 'run-secrets-'));
  const mainFile = join(secrets, 'main-db');
  const piiFile = join(secrets, 'pii-db');
  writeFileSync(mainFile, `${main.url}\n`, { mode: 0o400 });
  writeFileSync(piiFile, `${pii.url}\n`, { mode: 0o444 });
  const env = { DATABASE_URL_FILE: mainFile, PII_DATABASE_URL_FILE: piiFile };
  const t = await startTestServer({ env });
  try {
    assert.equal(t.server.services.stores.main.dialect, 'postgres');
    const user = await signUp(t, 'secret-file');
    const row = await t.server.services.stores.main.db.selectFrom('users').select('id').where('id', '=', user.userId).executeTakeFirst();
    assert.ok(row, 'the account is in the PostgreSQL main store');
    assert.equal(t.logs.filter((l) => l.includes(main.url) || l.includes(pii.url)).length, 0, 'the URLs are not logged');

    const doctor = await rampartWith({ ...env, RAMPART_DATA_DIR: t.dataDir }, 'doctor');
    assert.match(doctor.stdout, new RegExp(`OK +Secret file DATABASE_URL_FILE +${mainFile} \\(not readable by other users\\)`));
    assert.match(doctor.stdout, new RegExp(`WARN +Secret file PII_DATABASE_URL_FILE +${piiFile} is readable by every user on this host`));
    chmodSync(piiFile, 0o440);
    const fixed = await rampartWith({ ...env, RAMPART_DATA_DIR: t.dataDir }, 'doctor');
    assert.match(fixed.stdout, /OK +Secret file PII_DATABASE_URL_FILE/);
  } finally {
    await t.close();
    await main.drop();
    await pii.drop();
    rmSync(secrets, { recursive: true, force: true });
  }
});
