import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { buildReport, QUESTIONNAIRE } from '../../src/report/questionnaire.js';

test('every answer of the report names tests that exist', () => {
  for (const item of QUESTIONNAIRE) {
    assert.ok(item.evidence.length > 0, `${item.id}: an answer without evidence`);
    for (const evidence of item.evidence) {
      assert.ok(existsSync(evidence.file), `${item.id}: ${evidence.file} does not exist`);
      const source = readFileSync(evidence.file, 'utf8');
      const quoted = [evidence.test, evidence.test.replaceAll("'", "\\'")];
      assert.ok(quoted.some((name) => source.includes(`test('${name}'`) || source.includes(`describe('${name}'`) || source.includes(`test(\`${name}\``)),
        `${item.id}: no test named "${evidence.test}" in ${evidence.file}`);
    }
  }
});

test('every product item of the guide is answered, and answers follow the live configuration', () => {
  const ids = QUESTIONNAIRE.map((item) => item.id);
  for (const id of ['password-storage', 'password-strength', 'password-expiry', 'password-reuse', 'password-reset', 'mfa-user', 'mfa-org', 'api-tokens', 'ip-allowlist', 'sessions', 'client-side', 'secure-defaults', 'security-page']) {
    assert.ok(ids.includes(id), id);
  }
  const dir = mkdtempSync(join(tmpdir(), 'report-'));
  try {
    const secure = buildReport(loadConfig({ env: { RAMPART_DATA_DIR: dir }, flags: {} }), null);
    assert.equal(secure.find((i) => i.id === 'secure-defaults')?.status, 'yes');
    assert.match(secure.find((i) => i.id === 'password-storage')!.answer, /19456 KiB, 2 iterations/);
    assert.match(secure.find((i) => i.id === 'mfa-org')!.answer, /MFA_REQUIRED_FOR_ALL .*it is off here/);
    const everyone = buildReport(loadConfig({ env: { RAMPART_DATA_DIR: dir, MFA_REQUIRED_FOR_ALL: 'true' }, flags: {} }), null);
    assert.match(everyone.find((i) => i.id === 'mfa-org')!.answer, /it is on here \(72 h grace\)/);
    const loose = buildReport(loadConfig({ env: { RAMPART_DATA_DIR: dir, RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: 'true', ARGON2_MEMORY_KIB: '47104', ARGON2_ITERATIONS: '1' }, flags: {} }), null);
    assert.equal(loose.find((i) => i.id === 'secure-defaults')?.status, 'partial');
    assert.equal(loose.find((i) => i.id === 'tls')?.status, 'partial');
    assert.match(loose.find((i) => i.id === 'password-storage')!.answer, /47104 KiB, 1 iterations/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rampart report prints Markdown and JSON with live counts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-cli-'));
  try {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('RAMPART_')) env[key] = value;
    const markdown = spawnSync(process.execPath, [resolve('bin/rampart.js'), 'report', '--data-dir', dir], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(markdown.status, 0, markdown.stderr);
    assert.match(markdown.stdout, /^# Security questionnaire answers/);
    assert.match(markdown.stdout, /How are passwords stored\?/);
    assert.match(markdown.stdout, /Live: 0 of 0 organizations require a second factor/);
    const json = spawnSync(process.execPath, [resolve('bin/rampart.js'), 'report', '--json', '--data-dir', dir], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { items: Array<{ id: string; status: string }> };
    assert.ok(parsed.items.every((item) => ['yes', 'partial', 'no'].includes(item.status)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
