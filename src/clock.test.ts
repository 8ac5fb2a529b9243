import assert from 'node:assert/strict';
import { test } from 'node:test';
import { iso } from './clock.js';

test('iso formats as Date#toISOString does, also past its memo bound', () => {
  const start = Date.UTC(2026, 10, 29, 10, 27, 56, 197);
  for (let i = 0; i < 10_000; i += 1) {
    const instant = start + i * 7_919;
    assert.equal(iso(instant), new Date(instant).toISOString());
  }
  assert.equal(iso(start), '2026-11-29T10:27:56.197Z');
  assert.equal(iso(0), '1970-01-01T00:00:00.000Z');
});
