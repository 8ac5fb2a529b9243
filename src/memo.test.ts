import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedMemo } from './memo.js';

test('BoundedMemo computes a key once, and never holds more than its bound', () => {
  const memo = new BoundedMemo<number, string>(3);
  let computed = 0;
  const square = (n: number) => { computed += 1; return String(n * n); };
  assert.equal(memo.get(4, square), '16');
  assert.equal(memo.get(4, square), '16');
  assert.equal(computed, 1, 'the second answer came from the memo');
  for (let n = 0; n < 10; n += 1) assert.equal(memo.get(n, square), String(n * n));
  assert.ok(memo.size <= 3);
});
