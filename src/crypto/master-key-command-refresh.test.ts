/**
 * When CommandKeyProvider re-runs MASTER_KEY_COMMAND on its own: in the background as the
 * keys age (no wrap or unwrap needed), and on an unknown key id at most once a second. Each
 * run is counted by the command itself (it appends a byte to a file before printing the keys).
 * The provider's clock is injected; the background timer is real (a second at the shortest),
 * so those waits poll with generous deadlines and assert no tight timing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StaticKeyProvider } from './key-provider.js';
import { CommandKeyProvider } from './master-key-command.js';

const line = (id: string) => `${id} ${randomBytes(32).toString('base64url')}\n`;

/** A secret file, and a command that counts its runs and prints the secret. */
function secretStore() {
  const dir = mkdtempSync(join(tmpdir(), 'mkc-refresh-'));
  const secret = join(dir, 'secret');
  const runs = join(dir, 'runs');
  return {
    secret,
    command: `printf x >> '${runs}'; cat '${secret}'`,
    runCount: () => (existsSync(runs) ? readFileSync(runs, 'utf8').length : 0),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Polls until `condition` holds; fails after `timeoutMs` (generous: the machine may be slow). */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(50);
  }
}

test('the keys are re-read in the background once they are half a refresh interval old, with no wrap or unwrap; a key added to the secret then unwraps without a restart', async () => {
  const store = secretStore();
  try {
    const k1 = line('k1');
    writeFileSync(store.secret, k1);
    let now = 0;
    const errors: string[] = [];
    // refreshMs 1 s: the background check runs every second (its shortest period).
    const keys = await CommandKeyProvider.open({ command: store.command, timeoutMs: 5000, refreshMs: 1000, now: () => now, onRefreshError: (e) => errors.push(e.message) });
    assert.equal(store.runCount(), 1, 'run once at start');

    // Keys younger than half the interval are not re-read, however many checks pass.
    await sleep(2200);
    assert.equal(store.runCount(), 1, 'fresh keys: no run');

    // The operator adds a new current key to the secret; another instance wraps under it.
    const k2 = line('k2');
    writeFileSync(store.secret, k2 + k1);
    const other = await CommandKeyProvider.open({ command: `cat '${store.secret}'`, timeoutMs: 5000, refreshMs: 60_000, backgroundRefresh: false });
    const underK2 = await other.wrap(Buffer.alloc(32, 7), 'aad');
    assert.ok(underK2.startsWith('k2.'));

    // Half an interval later, the background check re-reads the secret by itself.
    now = 500;
    await waitFor(() => keys.keyIds().includes('k2'), 'the background re-run to read k2');
    assert.equal(store.runCount(), 2, 'one background run');
    assert.equal(keys.currentKeyId, 'k2', 'the new key is current');
    // The unwrap finds k2 already there: it runs nothing itself (and on this clock no miss re-run
    // would be allowed anyway, the last run being less than a second ago).
    assert.deepEqual(await keys.unwrap(underK2, 'aad'), Buffer.alloc(32, 7));
    assert.equal(store.runCount(), 2, 'the unwrap ran nothing');
    assert.ok((await keys.wrap(randomBytes(32), 'aad')).startsWith('k2.'), 'and new wraps use it, without a run either');
    assert.equal(store.runCount(), 2);

    // Periodically: once the keys age again, again.
    now = 1000;
    await waitFor(() => store.runCount() >= 3, 'a second background run');
    await sleep(1500);
    assert.equal(store.runCount(), 3, 'then nothing while the keys stay fresh');
    assert.deepEqual(errors, []);
  } finally {
    store.remove();
  }
});

test('on the real clock, a short refresh interval re-reads the keys every second or so with no request at all', async () => {
  const store = secretStore();
  let stopped = false;
  try {
    writeFileSync(store.secret, line('k1'));
    const keys = await CommandKeyProvider.open({ command: store.command, timeoutMs: 5000, refreshMs: 1000, now: () => (stopped ? 0 : Date.now()) });
    assert.equal(store.runCount(), 1);
    const started = Date.now();
    writeFileSync(store.secret, line('k2'));
    // Every second the keys are older than half the interval: expect a run a second; ask for two within 15 s.
    await waitFor(() => store.runCount() >= 3, 'two background runs');
    assert.ok(keys.keyIds().includes('k2'), 'the key added to the secret was read');
    assert.ok(Date.now() - started < 15_000);
  } finally {
    // Stops the (unref'd, never cleared) background timer's runs: on this clock the keys never age again.
    stopped = true;
    store.remove();
  }
});

test('an unknown key id re-runs the command at once, then at most once a second, however many unwraps name it', async () => {
  const store = secretStore();
  try {
    const k1 = line('k1');
    writeFileSync(store.secret, k1);
    let now = 0;
    const keys = await CommandKeyProvider.open({ command: store.command, timeoutMs: 5000, refreshMs: 3_600_000, now: () => now, backgroundRefresh: false });
    assert.equal(store.runCount(), 1);
    // Wrapped under a key this instance has never seen (another instance's new key).
    const foreignKey = randomBytes(32);
    const foreign = new StaticKeyProvider([{ id: 'kx', key: foreignKey }]).wrapSync(Buffer.alloc(32, 9), 'aad');

    // Within a second of the run at start, that run stands for the second: no run.
    now = 999;
    assert.equal(await keys.unwrap(foreign, 'aad'), null);
    assert.equal(store.runCount(), 1, 'the run at start was less than a second ago');

    // The first unknown id after that re-runs the command at once.
    now = 1000;
    assert.equal(await keys.unwrap(foreign, 'aad'), null, 'still unknown: not in the secret');
    assert.equal(store.runCount(), 2, 'the unknown id re-ran the command');

    // 800 unwraps, one after the other, spread over four seconds (t = 1000 … 4995): one run a second.
    for (let i = 1; i < 800; i++) {
      now = 1000 + i * 5;
      assert.equal(await keys.unwrap(foreign, 'aad'), null);
    }
    assert.equal(store.runCount(), 5, 'runs at 1000, 2000, 3000 and 4000 only (plus the one at start)');

    // 200 at once: one run between them.
    now = 5000;
    const results = await Promise.all(Array.from({ length: 200 }, () => keys.unwrap(foreign, 'aad')));
    assert.ok(results.every((r) => r === null));
    assert.equal(store.runCount(), 6, 'one run for 200 concurrent unwraps');

    // The key arrives in the secret: found by the next run allowed, not before.
    writeFileSync(store.secret, k1 + `kx ${foreignKey.toString('base64url')}\n`);
    now = 5999;
    assert.equal(await keys.unwrap(foreign, 'aad'), null, 'less than a second after the last run: not re-read yet');
    assert.equal(store.runCount(), 6);
    now = 6000;
    assert.deepEqual(await keys.unwrap(foreign, 'aad'), Buffer.alloc(32, 9), 'read by the next run, and unwrapped');
    assert.equal(store.runCount(), 7);
    // Known now: no further runs for it.
    now = 60_000;
    for (let i = 0; i < 50; i++) assert.deepEqual(await keys.unwrap(foreign, 'aad'), Buffer.alloc(32, 9));
    assert.equal(store.runCount(), 7, 'a known id runs nothing');
  } finally {
    store.remove();
  }
});

test('on the real clock, a burst of unwraps naming an unknown key id runs the command first, then no more than once a second', async () => {
  const store = secretStore();
  try {
    writeFileSync(store.secret, line('k1'));
    const keys = await CommandKeyProvider.open({ command: store.command, timeoutMs: 5000, refreshMs: 3_600_000, backgroundRefresh: false });
    const foreign = new StaticKeyProvider([{ id: 'kx', key: randomBytes(32) }]).wrapSync(Buffer.alloc(32, 1), 'aad');
    await sleep(1200); // past the second that the run at start stands for
    const before = store.runCount();
    const started = Date.now();
    assert.equal(await keys.unwrap(foreign, 'aad'), null);
    assert.equal(store.runCount(), before + 1, 'the first unknown id ran the command');
    // 200 unwraps over about a second and a half.
    for (let i = 0; i < 200; i++) {
      await keys.unwrap(foreign, 'aad');
      if (i % 20 === 19) await sleep(150);
    }
    const elapsed = Date.now() - started;
    const runs = store.runCount() - before;
    // Runs start at least a second apart: within `elapsed` ms, at most floor(elapsed / 1000) + 1.
    assert.ok(runs <= Math.floor(elapsed / 1000) + 1, `${runs} runs in ${elapsed} ms`);
  } finally {
    store.remove();
  }
});
