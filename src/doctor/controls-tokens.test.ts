import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { checkControls } from './controls.js';

test('doctor reports eternal API tokens as an insecure choice, and the access-JWT settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-doctor-'));
  try {
    const secure = checkControls(loadConfig({ env: { RAMPART_DATA_DIR: dir }, flags: {} }));
    assert.equal(secure.find((check) => check.control === 'API tokens')?.status, 'ok');
    assert.match(secure.find((check) => check.control === 'Access JWTs')?.detail ?? '', /EdDSA.*600 s.*30 days/);
    const insecure = checkControls(loadConfig({ env: { RAMPART_DATA_DIR: dir, RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS: 'true' }, flags: {} }));
    const row = insecure.find((check) => check.control === 'API tokens');
    assert.equal(row?.status, 'warn');
    assert.match(row?.detail ?? '', /RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS/);
    assert.throws(() => loadConfig({ env: { RAMPART_DATA_DIR: dir, ACCESS_TOKEN_TTL_SECONDS: '901' }, flags: {} }), /at most 900/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
