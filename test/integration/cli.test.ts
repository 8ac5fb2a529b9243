import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BIN, cliEnv } from '../helpers/cli.js';
import { TestClient } from '../helpers/client.js';



function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { env: cliEnv(env), encoding: 'utf8', timeout: 60_000 });
}

/** Starts `rampart serve` and resolves with its first stdout line. */
function serve(dataDir: string): Promise<{ child: ChildProcess; firstLine: string; output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  return new Promise((resolvePromise, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const before = stdout;
      stdout += chunk.toString('utf8');
      if (!before.includes('\n') && stdout.includes('\n')) resolvePromise({ child, firstLine: stdout.split('\n')[0]!, output: () => stdout });
    });
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.on('exit', (code) => reject(new Error(`serve exited early with ${code}: ${stdout}`)));
  });
}

describe('the command line', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('serve prints one "listening on" line first, answers over TLS, and stops cleanly on SIGTERM', async (t) => {
    const { child, firstLine, output } = await serve(dataDir);
    // A failed assertion before the SIGTERM below must not leave the server running (the file would hang).
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const match = /^listening on (https:\/\/127\.0\.0\.1:(\d+))$/.exec(firstLine);
    assert.ok(match, firstLine);
    const client = new TestClient(match[1]!, readFileSync(join(dataDir, 'tls', 'cert.pem'), 'utf8'));
    t.after(() => client.close());
    assert.equal((await client.get('/healthz')).status, 200);
    // Log lines are buffered, but a quiet server still writes them within about a second.
    const deadline = Date.now() + 5_000;
    while (!/"path":"\/healthz".*"request completed"/.test(output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(output(), /"path":"\/healthz".*"request completed"/, 'the access line of a quiet server reaches stdout without a shutdown');
    // A login in flight when the signal arrives still gets its answer.
    const inFlight = client.post('/v1/login', { email: 'nobody@example.com', password: 'some long password here' });
    await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal((await inFlight).status, 401);
    client.close();
    assert.equal(await exited, 0);
    const logLines = output().split('\n').slice(1).filter(Boolean);
    for (const line of logLines) assert.doesNotThrow(() => JSON.parse(line), `log lines are JSON: ${line}`);
  });

  test('`npm start`: SIGTERM to npm itself stops the server (a supervisor signals the process it started), no orphan left listening', async (t) => {
    const npmDir = mkdtempSync(join(tmpdir(), 'rampart-npm-start-'));
    t.after(() => rmSync(npmDir, { recursive: true, force: true }));
    const npm = spawn('npm', ['start', '--silent', '--', '--port', '0'], { env: cliEnv({ RAMPART_DATA_DIR: npmDir }), stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    });
    let stdout = '';
    const url = await new Promise<string>((resolvePromise, reject) => {
      npm.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        const match = /listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (match) resolvePromise(match[1]!);
      });
      npm.on('exit', (code) => reject(new Error(`npm start exited early with ${code}: ${stdout}`)));
    });
    // Every process npm started (the server, and a shell between them if there is one).
    const descendants = (root: number): number[] => {
      const table = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).stdout.trim().split('\n').map((line) => line.trim().split(/\s+/).map(Number));
      const found: number[] = [];
      for (let frontier = [root]; frontier.length > 0;) {
        const next = table.filter(([, ppid]) => frontier.includes(ppid!)).map(([pid]) => pid!);
        found.push(...next);
        frontier = next;
      }
      return found;
    };
    const started = descendants(npm.pid!);
    assert.ok(started.length > 0, 'npm started the server');
    t.after(() => {
      for (const pid of started) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    });
    const client = new TestClient(url, readFileSync(join(npmDir, 'tls', 'cert.pem'), 'utf8'));
    assert.equal((await client.get('/healthz')).status, 200);
    client.close();
    const exited = new Promise<void>((r) => npm.once('exit', () => r()));
    npm.kill('SIGTERM');
    await exited;
    const alive = () => started.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    const deadline = Date.now() + 10_000;
    while (alive().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(alive(), [], 'no process npm started is left');
    assert.match(stdout, /"msg":"shutting down"/, 'it stopped cleanly, on the signal');
  });

  test('migrate reports both stores up to date after serve ran', () => {
    const result = run(['migrate', '--data-dir', dataDir]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /main store .*: up to date/);
    assert.match(result.stdout, /pii store .*: up to date/);
  });

  test('doctor passes on the defaults and fails on a shared master key file', () => {
    const ok = run(['doctor', '--data-dir', dataDir]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    for (const control of ['TLS', 'Bind address', 'Master key file', 'Main store', 'PII store']) assert.match(ok.stdout, new RegExp(`^OK\\s+${control}`, 'm'));
    const keyFile = join(dataDir, 'keys', 'master.key');
    chmodSync(keyFile, 0o644);
    try {
      const bad = run(['doctor', '--data-dir', dataDir, '--json']);
      assert.equal(bad.status, 1);
      const checks = JSON.parse(bad.stdout) as Array<{ control: string; status: string }>;
      assert.equal(checks.find((c) => c.control === 'Master key file')?.status, 'fail');
      const refused = run(['serve', '--port', '0', '--data-dir', dataDir]);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /^rampart: .*master\.key is accessible to other users; run: chmod 600/);
    } finally {
      chmodSync(keyFile, 0o600);
    }
    const warned = run(['doctor', '--data-dir', dataDir], { RAMPART_HOST: '0.0.0.0' });
    assert.match(warned.stdout, /^WARN\s+Bind address/m);
  });

  test('a bad configuration stops with one line on stderr and no stack trace', () => {
    for (const [env, pattern] of [
      [{ RAMPART_PROT: '1' }, /unknown environment variable RAMPART_PROT/],
      [{ PASSWORD_MIN_LENGTH: '4' }, /PASSWORD_MIN_LENGTH must be at least 8/],
      [{ RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: 'true', RAMPART_HOST: '0.0.0.0' }, /loopback/],
    ] as const) {
      const result = run(['serve', '--data-dir', dataDir], env);
      assert.equal(result.status, 1);
      assert.match(result.stderr, pattern);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.doesNotMatch(result.stderr, /\bat .+:\d+:\d+/);
    }
  });

  test('every command has --help', () => {
    for (const command of ['serve', 'migrate', 'doctor']) {
      const result = run([command, '--help']);
      assert.equal(result.status, 0);
      assert.match(result.stdout, /--data-dir/);
    }
  });
});
