import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EVENT_CATALOGUE } from '../../src/events/catalogue.js';
import { renderEventCatalogue } from '../../src/events/catalogue-doc.js';

test('docs/events.md documents exactly the event catalogue (regenerate with `npm run docs:events`)', () => {
  const doc = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');
  assert.equal(doc, renderEventCatalogue(), 'docs/events.md is stale: run `npm run docs:events`');
});

test('every event action is named noun.past_verb', () => {
  for (const action of Object.keys(EVENT_CATALOGUE)) assert.match(action, /^[a-z_]+\.[a-z_]+$/, action);
});
