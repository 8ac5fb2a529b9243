import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { updateReadme } from '../../scripts/config-table.js';

test('the README configuration table matches src/config/schema.ts (run `npm run docs` after changing an option)', () => {
  const readme = readFileSync('README.md', 'utf8');
  assert.equal(readme, updateReadme(readme));
});

test('the README keeps the two-command quick start', () => {
  const readme = readFileSync('README.md', 'utf8');
  for (const command of ['npm install', 'npm start', 'npm test']) assert.ok(readme.includes(command), command);
});
