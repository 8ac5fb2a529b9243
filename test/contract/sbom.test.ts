import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';

interface Bom { components: Array<{ name: string; version: string; hashes?: Array<{ alg: string; content: string }> }> }

/** Each component as `name@version sha512`, sorted: what must not drift (not the timestamp or serial number). */
function components(bom: Bom): string[] {
  return bom.components.map((c) => `${c.name}@${c.version} ${c.hashes?.find((h) => h.alg === 'SHA-512')?.content ?? '-'}`).sort();
}

test('sbom.cdx.json lists exactly the runtime dependencies package-lock.json pins, with their hashes', async () => {
  const { stdout } = await promisify(execFile)('npm', ['sbom', '--sbom-format', 'cyclonedx', '--omit', 'dev', '--package-lock-only'], { maxBuffer: 16 * 1024 * 1024 });
  const fresh = components(JSON.parse(stdout) as Bom);
  const committed = components(JSON.parse(readFileSync('sbom.cdx.json', 'utf8')) as Bom);
  const missing = fresh.filter((c) => !committed.includes(c));
  const extra = committed.filter((c) => !fresh.includes(c));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'sbom.cdx.json is stale: run `npm run sbom:write` and commit it');
  assert.ok(fresh.length > 50 && fresh.every((c) => !c.endsWith(' -')), 'every component carries its SHA-512');
});
