import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressSubject } from './rate-limits.js';

test('addressSubject: IPv4 alone, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
  // Twice each: the second answer comes from the memo and must be the same.
  for (let round = 0; round < 2; round += 1) {
    assert.equal(addressSubject('203.0.113.7'), 'v4:203.0.113.7');
    assert.equal(addressSubject('::ffff:203.0.113.7'), 'v4:203.0.113.7');
    assert.equal(addressSubject('2001:db8:1:2:aaaa::1'), 'v6:2001:db8:1:2::/64');
    assert.equal(addressSubject('2001:db8:1:2:bbbb::9'), 'v6:2001:db8:1:2::/64');
    assert.notEqual(addressSubject('2001:db8:1:3::1'), addressSubject('2001:db8:1:2::1'));
    assert.equal(addressSubject('not an address'), 'raw:not an address');
  }
});

test('addressSubject stays right past its memo bound', () => {
  for (let i = 0; i < 12_000; i += 1) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    assert.equal(addressSubject(ip), `v4:${ip}`);
  }
});
