import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CommandKeyProvider } from './master-key-command.js';

const line = (id: string) => `${id} ${randomBytes(32).toString('base64url')}\n`;

test('CommandKeyProvider re-runs its command before a wrap once the keys are old, on an unknown id, and keeps its keys when a re-run fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mkc-'));
  try {
    const secret = join(dir, 'secret');
    const k1 = line('k1');
    writeFileSync(secret, k1);
    let now = 0;
    const errors: string[] = [];
    const runs = join(dir, 'runs');
    const runCount = () => readFileSync(runs, 'utf8').length;
    const keys = await CommandKeyProvider.open({ command: `printf x >> '${runs}'; cat '${secret}'`, timeoutMs: 5000, refreshMs: 60_000, now: () => now, onRefreshError: (e) => errors.push(e.message), backgroundRefresh: false });
    const underK1 = await keys.wrap(randomBytes(32), 'aad');
    assert.ok(underK1.startsWith('k1.'));

    // A new current key in the secret: not used before the keys are a refresh interval old.
    const k2 = line('k2');
    writeFileSync(secret, k2 + k1);
    now = 59_999;
    assert.ok((await keys.wrap(randomBytes(32), 'aad')).startsWith('k1.'));
    now = 60_000;
    const underK2 = await keys.wrap(randomBytes(32), 'aad');
    assert.ok(underK2.startsWith('k2.'), 'moved to the new current key');
    assert.ok(await keys.unwrap(underK1, 'aad'), 'older keys still unwrap');

    // A failing re-run reports why (never the output); the keys already read still unwrap, but
    // no wrap uses keys older than the refresh interval: the operator may have retired them.
    writeFileSync(secret, 'k3 not-a-key\n');
    now = 119_999;
    assert.ok((await keys.wrap(randomBytes(32), 'aad')).startsWith('k2.'), 'fresh enough, no run');
    now = 120_000;
    await assert.rejects(keys.wrap(randomBytes(32), 'aad'), (error: Error & { code?: string }) => error.code === 'not_ready' && /has not answered for 60 s/.test(error.message));
    assert.ok(await keys.unwrap(underK2, 'aad'), 'unwrapping goes on');
    assert.ok(await keys.unwrap(underK1, 'aad'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /MASTER_KEY_COMMAND output: each line must be/);
    assert.ok(!errors[0]!.includes('not-a-key'));

    // An id this instance has not seen makes it re-run at once (another instance rotated).
    const k4 = line('k4');
    writeFileSync(secret, k4 + k2);
    const other = await CommandKeyProvider.open({ command: `cat '${secret}'`, timeoutMs: 5000, refreshMs: 60_000, backgroundRefresh: false });
    const underK4 = await other.wrap(Buffer.alloc(32, 7), 'aad');
    now = 121_500;
    assert.deepEqual(await keys.unwrap(underK4, 'aad'), Buffer.alloc(32, 7));
    assert.equal(keys.currentKeyId, 'k4');
    // Concurrent callers share one run.
    writeFileSync(secret, line('k5') + k4 + k2);
    now = 200_000;
    const before = runCount();
    const wraps = await Promise.all([1, 2, 3].map(() => keys.wrap(randomBytes(32), 'aad')));
    assert.ok(wraps.every((w) => w.startsWith('k5.')));
    assert.equal(runCount(), before + 1, 'one run for three concurrent wraps');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing MASTER_KEY_COMMAND is reported by its exit status and stderr, with anything key-like in stderr blanked', async () => {
  const key = randomBytes(32).toString('base64url');
  await assert.rejects(CommandKeyProvider.open({ command: `echo 'mkleak ${key}' >&2; exit 2`, timeoutMs: 5000, refreshMs: 60_000, backgroundRefresh: false }), (error: Error) => {
    assert.equal(error.message, 'MASTER_KEY_COMMAND exited with status 2: mkleak [redacted]');
    return true;
  });
});
