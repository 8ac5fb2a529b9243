import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SDK_DIR = dirname(fileURLToPath(import.meta.url));
const ALLOWED_PACKAGES = new Set(['jose']);

/**
 * The SDK runs inside the product's backend: it must not drag in the server
 * (Fastify, stores, config, keys). Walks its static import graph from
 * index.ts: relative imports must stay inside src/sdk, bare ones must be jose
 * or a Node built-in. Type-only imports count too (they would break without
 * the server's sources).
 */
test('rampart/sdk imports only jose and Node built-ins, and nothing outside src/sdk', () => {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    assert.doesNotMatch(source, /\bimport\s*\(|\brequire\s*\(/, `${relative(SDK_DIR, file)}: no dynamic imports`);
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\s(?:[^;']*?\sfrom\s+)?'([^']+)'/g)) {
      const specifier = match[1]!;
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier.replace(/\.js$/, '.ts'));
        assert.ok(!relative(SDK_DIR, target).startsWith('..'), `${relative(SDK_DIR, file)} imports ${specifier}, outside src/sdk`);
        visit(target);
      } else {
        packages.add(specifier);
      }
    }
  };
  visit(join(SDK_DIR, 'index.ts'));
  assert.ok(seen.size >= 2);
  for (const name of packages) {
    const bare = name.replace(/^node:/, '');
    assert.ok(ALLOWED_PACKAGES.has(name) || builtinModules.includes(bare), `the SDK imports ${name}`);
  }
  assert.ok(packages.has('jose'));
});

test('the package subpath rampart/sdk resolves to the SDK', async () => {
  const sdk = await import('rampart/sdk');
  assert.equal(typeof sdk.createRampartVerifier, 'function');
  assert.equal(typeof sdk.RampartAuthError, 'function');
});
