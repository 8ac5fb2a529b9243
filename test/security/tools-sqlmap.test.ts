/**
 * Threat: SQL injection (ASVS V1.2.4, OWASP A03:2021 / A05:2025), probed black-box
 * with sqlmap (Debian package, installed by .ci/run) as checklist §9.3 runs it:
 * `--batch --level 2 --risk 1` (risk 1: no OR payloads that could mass-update rows),
 * on a disposable server and database, 127.0.0.1 only. Targets:
 *  - the JSON login body (`email` reaches SQL; `password` does not, tested anyway),
 *    sent with the real credentials so that a true injected condition would log in;
 *  - an authenticated list route with filters, `GET /v1/orgs/:id/audit?limit&action&actorId&after`,
 *    with the owner's session cookie.
 * Both stores are scanned (SQLite, PostgreSQL), with `--dbms` set to the store's
 * engine: that leaves out the MySQL/MSSQL/Oracle payloads and keeps each scan at
 * seconds instead of a minute.
 *
 * Rate limits would turn sqlmap's hundreds of requests into 429s and hide every
 * result: the harness's default GENEROUS_LIMITS (request limits and login back-off
 * at 1,000,000) are left on deliberately.
 *
 * Gate: sqlmap's exit code says nothing (0 either way), so the test demands, per
 * parameter, the line "parameter '…' does not seem to be injectable" (a sqlmap that
 * gave up early, e.g. on a 401 of the first request, prints none), the final "all
 * tested parameters do not appear to be injectable", a results CSV that holds its
 * header only, and no 5xx among the answers. The control test runs the same options
 * against a deliberately injectable login on 127.0.0.1 (string-built SQLite query):
 * sqlmap must report it injectable, so the options and the gate can fail.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { assertFinished, runTool, skipUnlessInstalled, toolPath } from '../helpers/attack-tools.js';
import { signUp, startTestServer, type StoreKind } from '../helpers/harness.js';
import { uniqueSlug } from '../helpers/orgs.js';

const DBMS: Record<StoreKind, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

/** One sqlmap run (§9.3 options) with its output, CSV rows and answers' status codes. */
async function sqlmap(target: string[], dbms: string) {
  const out = mkdtempSync(join(tmpdir(), 'sqlmap-'));
  try {
    const run = await runTool(toolPath('sqlmap'), [
      ...target,
      '--batch', '--level', '2', '--risk', '1', '--dbms', dbms, '--threads', '2', '--timeout', '10', '--retries', '1', '--time-sec', '2',
      '--flush-session', '--output-dir', out, '--disable-coloring',
    ], { seconds: 120, cwd: out });
    assertFinished(run, 'sqlmap');
    const csv = readdirSync(out).filter((f) => /^results-.*\.csv$/.test(f)).flatMap((f) => readFileSync(join(out, f), 'utf8').split('\n').filter(Boolean));
    return { output: `${run.stdout}\n${run.stderr}`, csv, milliseconds: run.milliseconds };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function assertNothingInjectable(result: { output: string; csv: string[] }, parameters: string[]): void {
  const { output, csv } = result;
  for (const parameter of parameters) {
    assert.match(output, new RegExp(`parameter '${parameter}' does not seem to be injectable`), `sqlmap did not finish testing ${parameter}:\n${output.slice(-3000)}`);
  }
  assert.match(output, /all tested parameters do not appear to be injectable/);
  assert.doesNotMatch(output, /is vulnerable|sqlmap identified the following injection point/, output.slice(-3000));
  assert.equal(csv.length, 1, `the results CSV lists an injection point:\n${csv.join('\n')}`);
  assert.doesNotMatch(output, /\b5\d\d \([A-Za-z ]+\) - \d+ times/, 'a payload made the server fail (5xx)');
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`sqlmap against the API (${store} store, V1.2.4)`, { skip: skipUnlessInstalled('sqlmap') }, () => {
    test('the JSON login body and the audit-log filters are not injectable', { timeout: 240_000 }, async () => {
      const t = await startTestServer({ store });
      try {
        const owner = await signUp(t, 'sqlmap');
        const created = await owner.client.post('/v1/orgs', { name: 'Sqlmap org', slug: uniqueSlug('sqlmap') });
        assert.equal(created.status, 201, created.text);
        const orgId: string = created.body.org.id;
        const cookie = `${SESSION_COOKIE}=${owner.client.cookies.get(SESSION_COOKIE)}`;
        const base = `https://127.0.0.1:${t.server.port}`;

        const login = await sqlmap([
          '-u', `${base}/v1/login`, '--method', 'POST', '-H', 'Content-Type: application/json',
          '--data', JSON.stringify({ email: owner.email, password: owner.password }),
          // Every altered guess is a 401 (or a 400 from the schema): expected answers, keep going.
          '--ignore-code', '400,401',
        ], DBMS[store]);
        assertNothingInjectable(login, ['JSON email', 'JSON password']);

        const audit = await sqlmap([
          '-u', `${base}/v1/orgs/${orgId}/audit?limit=10&action=org.created&actorId=${owner.userId}&after=1`,
          '-p', 'limit,action,actorId,after', '--cookie', cookie, '--drop-set-cookie', '--ignore-code', '400',
        ], DBMS[store]);
        assertNothingInjectable(audit, ['limit', 'action', 'actorId', 'after']);

        // The session survived the scan: sqlmap really ran authenticated.
        assert.equal((await owner.client.get(`/v1/orgs/${orgId}/audit?limit=1`)).status, 200);
      } finally {
        await t.close();
      }
    });
  });
}

describe('sqlmap control: the same options find a real injection', { skip: skipUnlessInstalled('sqlmap') }, () => {
  test('a login that builds its SQL from the email is reported injectable', { timeout: 120_000 }, async () => {
    const db = new Database(':memory:');
    db.exec("CREATE TABLE users (email TEXT, password TEXT); INSERT INTO users VALUES ('alice@example.test', 'secret')");
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        try {
          const { email, password } = JSON.parse(body) as { email: string; password: string };
          // Deliberately vulnerable: string-built SQL.
          const row = db.prepare(`SELECT email FROM users WHERE email = '${email}' AND password = '${password}'`).get();
          res.writeHead(row ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify(row ? { ok: true, user: 'alice' } : { code: 'invalid_credentials' }));
        } catch {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":"bad_request"}');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address();
      assert.ok(address !== null && typeof address === 'object');
      const result = await sqlmap([
        '-u', `http://127.0.0.1:${address.port}/login`, '--method', 'POST', '-H', 'Content-Type: application/json',
        '--data', JSON.stringify({ email: 'alice@example.test', password: 'secret' }), '-p', 'email', '--ignore-code', '400,401',
      ], 'SQLite');
      assert.match(result.output, /parameter 'JSON email' is vulnerable|sqlmap identified the following injection point/, result.output.slice(-3000));
      assert.ok(result.csv.length > 1, 'the CSV lists the injection point');
      assert.throws(() => assertNothingInjectable(result, ['JSON email']));
    } finally {
      server.closeAllConnections();
      server.close();
      db.close();
    }
  });
});
