import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

/**
 * docs/asvs.md claims, row by row, how Rampart meets OWASP ASVS 5.0 L1+L2 and names the
 * tests and code that show it. A claim whose evidence is gone is worse than none: every
 * cited path must exist and every cited test must still be there under that name.
 */
const STATUSES = new Set(['met', 'met (review)', 'partly', 'deviation', 'N/A', 'gap']);

function rows(): Array<{ id: string; status: string; evidence: string }> {
  const found: Array<{ id: string; status: string; evidence: string }> = [];
  for (const line of readFileSync('docs/asvs.md', 'utf8').split('\n')) {
    const match = /^\| (V\d+\.\d+\.\d+) \|(.*)\|\s*$/.exec(line);
    if (!match) continue;
    const cells = match[2]!.split('|').map((cell) => cell.trim());
    assert.equal(cells.length, 4, `${match[1]}: expected ID, L, requirement, status, evidence`);
    found.push({ id: match[1]!, status: cells[2]!, evidence: cells[3]! });
  }
  return found;
}

test('docs/asvs.md: one row per requirement, each with a known status', () => {
  const all = rows();
  assert.ok(all.length > 200, `only ${all.length} rows`);
  const ids = all.map((row) => row.id);
  assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'a requirement listed twice');
  for (const row of all) assert.ok(STATUSES.has(row.status), `${row.id}: unknown status "${row.status}"`);
  for (const row of all.filter((r) => r.status === 'met')) {
    assert.match(row.evidence, /`[^`]+\.test\.ts`/, `${row.id}: "met" names no test`);
  }
});

test('docs/asvs.md: every cited file exists and every cited test is still there', () => {
  for (const row of rows()) {
    for (const [, path] of row.evidence.matchAll(/`([A-Za-z0-9_./-]+\.(?:ts|md|mjs|cjs|json|sh))`/g)) {
      assert.ok(existsSync(path!), `${row.id}: ${path} does not exist`);
    }
    for (const [, path, name] of row.evidence.matchAll(/`([^`]+\.test\.ts)` › "([^"]+)"/g)) {
      const source = readFileSync(path!, 'utf8');
      const quoted = [name!, name!.replaceAll("'", "\\'")];
      assert.ok(quoted.some((n) => source.includes(`test('${n}'`) || source.includes(`describe('${n}'`) || source.includes(`test(\`${n}\``) || source.includes(`describe(\`${n}\``)),
        `${row.id}: no test named "${name}" in ${path}`);
    }
  }
});
