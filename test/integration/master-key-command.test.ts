import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, cliEnv, rampartWith } from '../helpers/cli.js';
import { signUp, startTestServer, strongPassword, uniqueEmail } from '../helpers/harness.js';

const line = (id: string) => `${id} ${randomBytes(32).toString('base64url')}\n`;

test('master keys from MASTER_KEY_COMMAND: none on disk, readable after a restart, rotated from the secret store while the server serves', async () => {
  const secretDir = mkdtempSync(join(tmpdir(), 'secret-store-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-mkc-'));
  const secret = join(secretDir, 'rampart-master');
  const k1 = line('mkone');
  writeFileSync(secret, k1, { mode: 0o600 });
  const env = { MASTER_KEY_COMMAND: `cat '${secret}'`, MASTER_KEY_COMMAND_REFRESH_SECONDS: '1' };
  let t = await startTestServer({ env, dataDir });
  try {
    const alice = await signUp(t, 'mkc-a');
    assert.ok(!existsSync(join(dataDir, 'keys')), 'no key file is written');
    const dek = async (userId: string) => (await t.server.services.stores.pii.db.selectFrom('pii_users').select('wrapped_dek').where('user_id', '=', userId).executeTakeFirstOrThrow()).wrapped_dek;
    assert.ok((await dek(alice.userId)).startsWith('mkone.'));

    // The operator puts a new key first in the secret, then runs rotate-master.
    const k2 = line('mktwo');
    writeFileSync(secret, k2 + k1);
    const rotated = await rampartWith({ ...env, RAMPART_DATA_DIR: dataDir }, 'keys', 'rotate-master');
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /from MASTER_KEY_COMMAND, current mktwo/);
    assert.match(rotated.stdout, /pii_users\.wrapped_dek: 1 re-wrapped/);
    assert.match(rotated.stdout, /nothing is wrapped under mkone any more: remove it from the secret/);
    for (const column of t.server.services.wrappedKeys) {
      assert.deepEqual([...(await column.countByKeyId()).keys()].filter((id) => id !== 'mktwo'), [], `${column.name} re-wrapped`);
    }
    // The running server read only mkone at start: it follows without a restart.
    assert.equal((await alice.client.get('/v1/session')).status, 200);
    const bob = await signUp(t, 'mkc-b');
    assert.ok((await dek(bob.userId)).startsWith('mktwo.'), 'new data keys are wrapped under the new current key');
    const rotations = await t.server.services.stores.main.db.selectFrom('audit_events').select('action').where('action', '=', 'master_key.rotated').execute();
    assert.equal(rotations.length, 1);

    // --retire is the key file's; the secret store's keys are not rampart's to remove.
    const retire = await rampartWith({ ...env, RAMPART_DATA_DIR: dataDir }, 'keys', 'rotate-master', '--retire');
    assert.equal(retire.code, 1);
    assert.match(retire.stderr, /removed from the secret it reads, not by rampart/);

    // The old key leaves the secret; after a restart everything still opens.
    writeFileSync(secret, k2);
    await t.close({ keepData: true });
    t = await startTestServer({ env, dataDir });
    for (const user of [alice, bob]) {
      const client = t.client();
      assert.equal((await client.post('/v1/login', { email: user.email, password: user.password })).status, 200);
      assert.equal(((await client.get('/v1/session')).body as { user: { email: string } }).user.email, user.email);
    }
  } finally {
    await t.close();
    rmSync(secretDir, { recursive: true, force: true });
  }
});

test('a MASTER_KEY_COMMAND that fails, prints no keys or hangs stops start-up with a reason, never with what it printed', async () => {
  await assert.rejects(startTestServer({ env: { MASTER_KEY_COMMAND: `echo 'mkleak ${'A'.repeat(43)}'; echo 'permission denied' >&2; exit 3` } }), (error: Error) => {
    assert.match(error.message, /^MASTER_KEY_COMMAND exited with status 3: permission denied$/);
    return true;
  });
  await assert.rejects(startTestServer({ env: { MASTER_KEY_COMMAND: 'echo mkleak SUPERSECRETVALUE' } }), (error: Error) => {
    assert.match(error.message, /^MASTER_KEY_COMMAND output: each line must be/);
    assert.ok(!error.message.includes('SUPERSECRET'));
    return true;
  });
  await assert.rejects(startTestServer({ env: { MASTER_KEY_COMMAND: 'true' } }), /MASTER_KEY_COMMAND output holds no key/);
  const started = Date.now();
  await assert.rejects(startTestServer({ env: { MASTER_KEY_COMMAND: 'sleep 30', MASTER_KEY_COMMAND_TIMEOUT_SECONDS: '1' } }), /MASTER_KEY_COMMAND did not finish within 1 s$/);
  assert.ok(Date.now() - started < 10_000, 'the command is killed at its timeout');
  await assert.rejects(startTestServer({ env: { MASTER_KEY_COMMAND: 'true', MASTER_KEY_FILE: '/tmp/x.key' } }), /MASTER_KEY_FILE and MASTER_KEY_COMMAND exclude each other/);
});

test('doctor runs MASTER_KEY_COMMAND and reports its keys, or fails with its reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-mkc-doctor-'));
  try {
    const secret = join(dir, 'secret');
    writeFileSync(secret, line('mkcur') + line('mkold'));
    const good = await rampartWith({ RAMPART_DATA_DIR: dir, MASTER_KEY_COMMAND: `cat '${secret}'` }, 'doctor');
    assert.match(good.stdout, /OK +Master key +from MASTER_KEY_COMMAND \(a secrets manager, not a file on this host\): 2 key\(s\), current mkcur/);
    assert.doesNotMatch(good.stdout, /Master key file/);
    // A key file left from before the move to the secrets manager is reported.
    mkdirSync(join(dir, 'keys'), { mode: 0o700 });
    writeFileSync(join(dir, 'keys', 'master.key'), line('mkleft'), { mode: 0o600 });
    const leftover = await rampartWith({ RAMPART_DATA_DIR: dir, MASTER_KEY_COMMAND: `cat '${secret}'` }, 'doctor');
    assert.match(leftover.stdout, /WARN +Master key file +.*master\.key is still on disk although MASTER_KEY_COMMAND supplies the keys/);
    const bad = await rampartWith({ RAMPART_DATA_DIR: dir, MASTER_KEY_COMMAND: 'exit 4' }, 'doctor');
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /FAIL +Master key +MASTER_KEY_COMMAND exited with status 4/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('while MASTER_KEY_COMMAND fails, logins go on but nothing new is wrapped under keys older than the refresh interval (503), until it answers again', async () => {
  const secretDir = mkdtempSync(join(tmpdir(), 'secret-store-'));
  const secret = join(secretDir, 'rampart-master');
  const keys = line('mkstale');
  writeFileSync(secret, keys, { mode: 0o600 });
  const t = await startTestServer({ env: { MASTER_KEY_COMMAND: `cat '${secret}'`, MASTER_KEY_COMMAND_REFRESH_SECONDS: '1' } });
  try {
    const alice = await signUp(t, 'mkc-stale');
    writeFileSync(secret, 'the secrets manager is down\n');
    await new Promise((resolve) => setTimeout(resolve, 2200));
    const refused = await t.client().post('/v1/signup', { email: uniqueEmail('mkc-stale-new'), password: strongPassword(), name: 'New' });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.code, 'not_ready');
    assert.ok(!refused.text.includes('down'), 'the command\'s output is not in the answer');
    assert.equal((await t.client().post('/v1/login', { email: alice.email, password: alice.password })).status, 200, 'unwrapping goes on');
    assert.ok(t.logs.some((l) => /MASTER_KEY_COMMAND failed/.test(l)), 'the failure is logged');
    writeFileSync(secret, keys);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal((await t.client().post('/v1/signup', { email: uniqueEmail('mkc-stale-back'), password: strongPassword(), name: 'Back' })).status, 201);
  } finally {
    await t.close();
    rmSync(secretDir, { recursive: true, force: true });
  }
});

test('rotate-master with MASTER_KEY_COMMAND re-wraps, after its wait, what a server still on the old keys wrapped meanwhile', async () => {
  const secretDir = mkdtempSync(join(tmpdir(), 'secret-store-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-mkc-straggler-'));
  const secret = join(secretDir, 'rampart-master');
  const k1 = line('mkold');
  writeFileSync(secret, k1, { mode: 0o600 });
  // The server reads the secret once a minute: within this test it keeps the keys it started with.
  const t = await startTestServer({ env: { MASTER_KEY_COMMAND: `cat '${secret}'`, MASTER_KEY_COMMAND_REFRESH_SECONDS: '60' }, dataDir });
  try {
    await signUp(t, 'mkc-straggler-a');
    writeFileSync(secret, line('mknew') + k1);
    // The command's own interval is a second: it waits 6 s between its two passes.
    const cli = spawn(process.execPath, [BIN, 'keys', 'rotate-master'], {
      env: cliEnv({ LOG_LEVEL: 'silent', RAMPART_DATA_DIR: dataDir, MASTER_KEY_COMMAND: `cat '${secret}'`, MASTER_KEY_COMMAND_REFRESH_SECONDS: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => cli.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      cli.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (/waiting \d+ s/.test(stdout)) resolve();
      });
      void exited.then(() => reject(new Error(`rotate-master ended before its wait: ${stdout}`)));
    });
    // Between the two passes, a server that has not re-read the secret yet wraps under the old key.
    const straggler = await signUp(t, 'mkc-straggler-b');
    const dek = await t.server.services.stores.pii.db.selectFrom('pii_users').select('wrapped_dek').where('user_id', '=', straggler.userId).executeTakeFirstOrThrow();
    assert.ok(dek.wrapped_dek.startsWith('mkold.'), 'wrapped under the old key meanwhile');
    assert.equal(await exited, 0, stdout);
    assert.equal(stdout.match(/pii_users\.wrapped_dek: 1 re-wrapped/g)?.length, 2, 'once per pass');
    assert.match(stdout, /nothing is wrapped under mkold any more/);
    for (const column of t.server.services.wrappedKeys) {
      assert.deepEqual([...(await column.countByKeyId()).keys()].filter((id) => id !== 'mknew'), [], `${column.name} re-wrapped`);
    }
  } finally {
    await t.close();
    rmSync(secretDir, { recursive: true, force: true });
  }
});
