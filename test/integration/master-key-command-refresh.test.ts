/**
 * A serving instance keeps MASTER_KEY_COMMAND's keys fresh by itself: with a short
 * MASTER_KEY_COMMAND_REFRESH_SECONDS it re-runs the command in the background, without any
 * request, wrap or unwrap, and a key the operator adds to the secret is then there to unwrap
 * with, without a restart. (The other MASTER_KEY_COMMAND tests send requests that wrap, and a
 * wrap with old keys re-runs the command itself: they pass without the background refresh.)
 * The runs are counted by the command (it appends a byte to a file before printing the keys).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StaticKeyProvider } from '../../src/crypto/key-provider.js';
import { startTestServer } from '../helpers/harness.js';

test('with MASTER_KEY_COMMAND_REFRESH_SECONDS=1 a serving instance re-reads the secret every second or so with no request, and a key added to it unwraps there without a restart', async () => {
  const secretDir = mkdtempSync(join(tmpdir(), 'secret-store-'));
  const secret = join(secretDir, 'rampart-master');
  const runs = join(secretDir, 'runs');
  const runCount = () => readFileSync(runs, 'utf8').length;
  const k1 = `mkbgone ${randomBytes(32).toString('base64url')}\n`;
  writeFileSync(secret, k1, { mode: 0o600 });
  const t = await startTestServer({ env: { MASTER_KEY_COMMAND: `printf x >> '${runs}'; cat '${secret}'`, MASTER_KEY_COMMAND_REFRESH_SECONDS: '1' } });
  try {
    const keys = t.server.services.keys;
    assert.equal(keys.currentKeyId, 'mkbgone');
    // The operator adds a new current key to the secret; no request reaches the server from here on.
    const k2 = randomBytes(32);
    writeFileSync(secret, `mkbgtwo ${k2.toString('base64url')}\n${k1}`);
    const base = runCount();
    const started = Date.now();
    // About a run a second; ask for two within a generous deadline.
    while (runCount() < base + 2 || !keys.keyIds().includes('mkbgtwo')) {
      assert.ok(Date.now() - started < 20_000, `only ${runCount() - base} background run(s) in 20 s`);
      await sleep(100);
    }
    assert.equal(keys.currentKeyId, 'mkbgtwo', 'the new key is current');
    // A data key another instance wrapped under the new key unwraps here.
    const wrapped = new StaticKeyProvider([{ id: 'mkbgtwo', key: k2 }]).wrapSync(Buffer.alloc(32, 5), 'aad');
    assert.deepEqual(await keys.unwrap(wrapped, 'aad'), Buffer.alloc(32, 5));
    assert.ok(!t.logs.some((l) => /MASTER_KEY_COMMAND failed/.test(l)), 'no run failed');
  } finally {
    await t.close();
    rmSync(secretDir, { recursive: true, force: true });
  }
});
