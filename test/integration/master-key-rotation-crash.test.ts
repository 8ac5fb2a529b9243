/**
 * Threat: `rampart keys rotate-master` dies half-way (SIGKILL, a lost SSH session, a host
 * failure of the process) while it re-wraps thousands of data keys, and leaves keys that
 * nothing can unwrap: a bricked deployment.
 *
 * Property: killed in the middle of its re-wrap (some data keys under the new master key,
 * the rest under the old one), every data key still opens in a fresh process (the key
 * file holds both master keys before the first re-wrap); running the command again
 * finishes the job, and `--retire` then leaves one master key that opens everything.
 * SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { parseMasterKeyFile } from '../../src/crypto/master-key-file.js';
import { randomId } from '../../src/crypto/random.js';
import { createLogger } from '../../src/logger.js';
import { createServices } from '../../src/services.js';
import { BIN, cliEnv, rampartWith } from '../helpers/cli.js';
import type { StoreKind } from '../helpers/harness.js';
import { startTestServices } from '../helpers/services.js';

const PROFILES = 3000;

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`master-key rotation killed half-way (${store})`, () => {
    test('every data key still opens; running it again finishes, and --retire leaves one key that opens everything', async (t) => {
      const s = await startTestServices({ store });
      try {
        const { services, env } = s;
        const userIds = Array.from({ length: PROFILES }, () => randomId('usr'));
        for (let i = 0; i < userIds.length; i += 100) {
          await Promise.all(userIds.slice(i, i + 100).map((id, j) => services.pii.createProfile(id, `crash.rotation.${i + j}@example.com`, `Person ${i + j}`)));
        }
        const keyFile = join(s.dataDir, 'keys', 'master.key');
        const wrappedBy = async (id: string) => Number((await services.stores.pii.db.selectFrom('pii_users').select((eb) => eb.fn.countAll().as('n'))
          .where('wrapped_dek', 'like', `${id}.%`).executeTakeFirstOrThrow()).n);

        // Killed once the new key has wrapped some data keys and before it has wrapped them all.
        const child: ChildProcess = spawn(process.execPath, [BIN, 'keys', 'rotate-master'], { env: cliEnv({ LOG_LEVEL: 'silent', ...env }), stdio: ['ignore', 'pipe', 'ignore'] });
        let stdout = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          stdout += chunk.toString('utf8');
        });
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        let midway = -1;
        for (let polls = 0; polls < 6000 && child.exitCode === null; polls++) {
          const match = /new master key (\S+);/.exec(stdout);
          if (match) {
            const done = await wrappedBy(match[1]!);
            if (done > 0 && done < PROFILES) {
              child.kill('SIGKILL');
              midway = done;
              break;
            }
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        await exited;
        assert.ok(midway > 0, `the command was killed half-way through its re-wrap (it ${child.exitCode === 0 ? 'finished first' : 'stopped'}: ${stdout})`);
        t.diagnostic(`killed after ${midway} of ${PROFILES} data keys were re-wrapped`);
        const keys = parseMasterKeyFile(readFileSync(keyFile, 'utf8'));
        assert.equal(keys.length, 2, 'the new master key was saved before the first re-wrap');

        // A fresh process (the key file as it is now) opens every profile.
        const check = async () => {
          const fresh = await createServices(loadConfig({ env, flags: {} }), createLogger('silent', new Writable({ write: (_c, _e, done) => done() })));
          try {
            let opened = 0;
            for (const id of userIds) if ((await fresh.pii.getProfile(id))?.email.startsWith('crash.rotation.')) opened++;
            return opened;
          } finally {
            await fresh.close();
          }
        };
        assert.equal(await check(), PROFILES, `every data key opens after the kill (${midway} of ${PROFILES} were re-wrapped)`);

        // Run again: it finishes; --retire then leaves one key, under which everything opens.
        const again = await rampartWith(env, 'keys', 'rotate-master', '--retire');
        assert.equal(again.code, 0, again.stderr);
        const final = parseMasterKeyFile(readFileSync(keyFile, 'utf8'));
        assert.equal(final.length, 1);
        assert.equal(await wrappedBy(final[0]!.id), PROFILES, 'every data key is wrapped by the one key left');
        assert.equal(await check(), PROFILES);
      } finally {
        await s.close();
      }
    });
  });
}
