/**
 * Threat: online password guessing with a real brute-force tool (ASVS V6.3.1,
 * OWASP A07). THC-Hydra (Debian package, installed by .ci/run) works through a
 * wordlist whose real password sits at position 25, past every documented
 * threshold (login back-off after 5 failures of one account from one address,
 * RATE_LIMIT_ACCOUNT_PER_MINUTE 10, account back-off after 20). With the
 * documented defaults hydra must find no valid password; the same run against a
 * server with the limits and the back-off switched off must find it, which
 * proves the wordlist, the hydra options and the success marker work (checklist
 * §9.4). The server runs on the wall clock here (hydra attacks in real time).
 *
 * hydra 9.4 (Debian 12) treats an HTTP 401 as "wrong module, this is HTTP auth"
 * and retries the same pair until its time limit (checklist §9.4; 9.6 adds `1=`).
 * Rampart answers a wrong password with 401, so hydra talks plain HTTP to a
 * relay on 127.0.0.1 that forwards every request unchanged to Rampart over HTTPS
 * and passes every answer back unchanged except that status 401 reads 403. The
 * relay also records which status answered the request carrying the real
 * password: the limited run must show that even the right password was refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { assertFinished, runTool, skipUnlessInstalled, toolPath } from '../helpers/attack-tools.js';
import { startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';

/** The harness's manual clock, ticking with the wall clock: hydra's minute is a real minute. */
class WallClock extends ManualClock {
  override now(): number {
    return Date.now();
  }
}

/** The documented defaults (src/config/schema.ts), undoing the harness's generous test limits. */
const DOCUMENTED_LIMITS = {
  RATE_LIMIT_ANON_PER_MINUTE: '120',
  RATE_LIMIT_AUTH_PER_MINUTE: '1200',
  RATE_LIMIT_ACCOUNT_PER_MINUTE: '10',
  LOGIN_BACKOFF_AFTER_FAILURES: '5',
  LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '20',
};
/** INSECURE: the control run. The flag keeps the login back-off on, so that goes too. */
const NO_LIMITS = {
  RAMPART_INSECURE_DISABLE_RATE_LIMITS: 'true',
  LOGIN_BACKOFF_AFTER_FAILURES: '1000000',
  LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES: '1000000',
};
const WORDLIST_LENGTH = 30;
const POSITION = 25;

interface Answer {
  password: string;
  status: number;
}

function passwordOf(body: Buffer): string {
  try {
    return String((JSON.parse(body.toString('utf8')) as { password?: unknown }).password ?? '');
  } catch {
    return '';
  }
}

/** Plain HTTP on 127.0.0.1 → Rampart over HTTPS; 401 reads 403 (see the header comment). */
async function startRelay(t: TestServer, answers: Answer[]): Promise<{ port: number; close(): Promise<void> }> {
  const target = new URL(t.url);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: IncomingHttpHeaders = { ...req.headers, host: target.host };
      const upstream = httpsRequest(
        { hostname: '127.0.0.1', port: target.port, path: req.url, method: req.method, headers, ca: t.ca ?? undefined, servername: 'localhost' },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            const status = answer.statusCode ?? 502;
            // hydra first GETs the form page (for cookies); only its POSTs are guesses.
            if (req.method === 'POST') answers.push({ password: passwordOf(body), status });
            const payload = Buffer.concat(parts);
            // hydra speaks HTTP/1.0: drop the hop-by-hop headers, send a length and close.
            const { connection: _c, 'keep-alive': _k, 'transfer-encoding': _te, ...kept } = answer.headers;
            res.writeHead(status === 401 ? 403 : status, { ...kept, 'content-length': String(payload.length), connection: 'close' });
            res.end(payload);
          });
        },
      );
      upstream.on('error', (error) => {
        res.writeHead(502).end(String(error));
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** One hydra run against a fresh server started with `env`; the real password at POSITION. */
async function attack(env: Record<string, string>) {
  const t = await startTestServer({ env, clock: new WallClock() });
  const work = mkdtempSync(join(tmpdir(), 'hydra-'));
  const answers: Answer[] = [];
  const relay = await startRelay(t, answers);
  try {
    const email = uniqueEmail('hydra');
    // Letters and digits only: hydra URL-encodes ^PASS^ even inside a JSON body (§9.4).
    const password = `VioletTractor${Math.random().toString(36).slice(2, 8)}HarborQuill7`;
    const signup = await t.client().post('/v1/signup', { email, password, name: 'Hydra target' });
    assert.equal(signup.status, 201, signup.text);
    const words = Array.from({ length: WORDLIST_LENGTH }, (_, i) => `wrongGuess${i + 1}x`);
    words[POSITION - 1] = password;
    writeFileSync(join(work, 'passwords.txt'), `${words.join('\n')}\n`);
    // The email is written into the body as is (^USER^ would URL-encode its @); -l only names the row.
    const form = `/v1/login:{"email"\\:"${email}","password"\\:"^PASS^"}:H=Content-Type\\: application/json:S=${SESSION_COOKIE}`;
    const run = await runTool(
      toolPath('hydra'),
      ['-I', '-l', 'target', '-P', join(work, 'passwords.txt'), '-s', String(relay.port), '-t', '1', '-w', '10', '-f', '-o', join(work, 'found.txt'), '127.0.0.1', 'http-post-form', form],
      { seconds: 90, cwd: work },
    );
    assertFinished(run, 'hydra');
    return { run, password, answers, output: `${run.stdout}\n${run.stderr}` };
  } finally {
    await relay.close();
    await t.close();
    rmSync(work, { recursive: true, force: true });
  }
}

describe('hydra against the login (V6.3.1)', { skip: skipUnlessInstalled('hydra') }, () => {
  test('control: with rate limits and back-off off, hydra finds the password at position 25', { timeout: 120_000 }, async () => {
    const { password, answers, output } = await attack(NO_LIMITS);
    assert.match(output, /1 valid password found/, output);
    assert.ok(output.includes(`password: ${password}`), output);
    assert.equal(answers.find((a) => a.password === password)?.status, 200);
  });

  test('with the documented limits, hydra finds no valid password and even the right one is refused', { timeout: 120_000 }, async () => {
    const { password, answers, output } = await attack(DOCUMENTED_LIMITS);
    assert.match(output, /0 valid passwords? found/, output);
    assert.ok(!output.includes(password), 'hydra must not print the password');
    assert.equal(answers.length, WORDLIST_LENGTH, 'hydra tried every word exactly once');
    const right = answers.find((a) => a.password === password);
    assert.equal(right?.status, 429, 'the request with the right password was answered 429');
    assert.ok(answers.every((a) => a.status === 401 || a.status === 429), JSON.stringify(answers));
    assert.ok(answers.slice(0, 5).every((a) => a.status === 401), 'the first five guesses are checked (typos are tolerated)');
  });
});
