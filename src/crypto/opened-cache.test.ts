import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OpenedCache } from './opened-cache.js';

test('an opened value is served from memory for the TTL, then opened again', () => {
  let now = 1_000;
  let opens = 0;
  const cache = new OpenedCache<string>(10, 60_000, () => now);
  const open = () => { opens++; return 'plain'; };
  assert.equal(cache.open('sealed', 'aad', open), 'plain');
  assert.equal(cache.open('sealed', 'aad', open), 'plain');
  assert.equal(opens, 1);
  now += 60_000;
  assert.equal(cache.open('sealed', 'aad', open), 'plain');
  assert.equal(opens, 2, 'expired entries are opened again');
});

test('the associated data is part of the identity, failures are not kept, size is bounded', () => {
  const cache = new OpenedCache<string>(3, 60_000);
  cache.set('sealed', 'user-1:email', 'a@example.com');
  assert.equal(cache.get('sealed', 'user-2:email'), undefined);
  let opens = 0;
  assert.equal(cache.open('bad', 'aad', () => { opens++; return null; }), null);
  assert.equal(cache.open('bad', 'aad', () => { opens++; return null; }), null);
  assert.equal(opens, 2, 'a value that did not open is never cached');
  for (let i = 0; i < 10; i++) cache.set(`s${i}`, 'aad', String(i));
  assert.equal(cache.size, 3);
  assert.equal(cache.get('s0', 'aad'), undefined, 'oldest entries leave first');
  assert.equal(cache.get('s9', 'aad'), '9');
});
