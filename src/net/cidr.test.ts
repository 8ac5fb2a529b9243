/**
 * CIDR parsing and allowlist decisions, checked by fast-check against an
 * independent model: every address is a 128-bit BigInt in which IPv4 lives at
 * ::ffff:0:0/96 (RFC 4291 §2.5.5.2), and "inside a /p" means "the top p bits are
 * equal". The generators build the numbers first and only then write them as
 * text, so the model never parses anything with the code under test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isAddressAllowed } from '../orgs/ip-allowlist.js';
import { isAddressInRanges, parseAddress, parseCIDR, parseCIDRs } from './cidr.js';

const MAPPED_BASE = 0xffffn << 32n;
const ALL_128 = (1n << 128n) - 1n;

interface ModelRange {
  text: string;
  /** The network in the 128-bit space. */
  network: bigint;
  /** The prefix in the 128-bit space (an IPv4 /p is /96+p). */
  bits128: number;
}

interface ModelAddress {
  text: string;
  value: bigint;
}

function inModel(address: bigint, range: Pick<ModelRange, 'network' | 'bits128'>): boolean {
  const shift = BigInt(128 - range.bits128);
  return address >> shift === range.network >> shift;
}

function maskOf(bits: number, width: number): bigint {
  const all = (1n << BigInt(width)) - 1n;
  return bits === 0 ? 0n : (all >> BigInt(width - bits)) << BigInt(width - bits);
}

function v4Text(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join('.');
}

/** Full form, or with the longest run of zero groups compressed to "::" (RFC 5952 §4.2). */
function v6Text(value: bigint, compress: boolean, upper: boolean): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let text = groups.map((g) => g.toString(16)).join(':');
  if (compress) {
    let best = { start: -1, length: 0 };
    for (let i = 0; i < 8;) {
      if (groups[i] !== 0) { i++; continue; }
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > best.length) best = { start: i, length: j - i };
      i = j;
    }
    if (best.length >= 2) {
      const head = groups.slice(0, best.start).map((g) => g.toString(16)).join(':');
      const tail = groups.slice(best.start + best.length).map((g) => g.toString(16)).join(':');
      text = `${head}::${tail}`;
    }
  }
  return upper ? text.toUpperCase() : text;
}

const v4Bits = fc.oneof(fc.constantFrom(0, 1, 8, 16, 24, 31, 32), fc.integer({ min: 0, max: 32 }));
const v6Bits = fc.oneof(fc.constantFrom(0, 1, 48, 64, 80, 95, 96, 97, 104, 120, 127, 128), fc.integer({ min: 0, max: 128 }));
const u32 = fc.bigInt({ min: 0n, max: 0xffffffffn });
const u128 = fc.bigInt({ min: 0n, max: ALL_128 });

const v4Range: fc.Arbitrary<ModelRange> = fc.tuple(u32, v4Bits).map(([raw, bits]) => {
  const network = raw & maskOf(bits, 32);
  return { text: `${v4Text(network)}/${bits}`, network: MAPPED_BASE | network, bits128: 96 + bits };
});

const v6Range: fc.Arbitrary<ModelRange> = fc.tuple(u128, v6Bits, fc.boolean(), fc.boolean()).map(([raw, bits, compress, upper]) => {
  const network = raw & maskOf(bits, 128);
  return { text: `${v6Text(network, compress, upper)}/${bits}`, network, bits128: bits };
});

/** A v6 range inside the IPv4-mapped block, written "::ffff:a.b.c.d/p". */
const mappedRange: fc.Arbitrary<ModelRange> = fc.tuple(u32, fc.integer({ min: 96, max: 128 })).map(([raw, bits]) => {
  const network = MAPPED_BASE | (raw & maskOf(bits - 96, 32));
  return { text: `::ffff:${v4Text(network & 0xffffffffn)}/${bits}`, network, bits128: bits };
});

const anyRange = fc.oneof(v4Range, v6Range, mappedRange);

function addressNear(range: ModelRange): fc.Arbitrary<ModelAddress> {
  const size = 1n << BigInt(128 - range.bits128);
  const candidates = [range.network, range.network + size - 1n, range.network - 1n, range.network + size];
  return fc.tuple(fc.constantFrom(...candidates), fc.boolean(), fc.boolean()).map(([value, compress, upper]) => toAddress(value & ALL_128, compress, upper));
}

/** Writes a 128-bit value the way a socket or a proxy might: IPv4 dotted when mapped, sometimes as ::ffff:a.b.c.d. */
function toAddress(value: bigint, compress: boolean, upper: boolean): ModelAddress {
  if (value >> 32n === 0xffffn) {
    const v4 = v4Text(value & 0xffffffffn);
    return { text: compress ? v4 : `::ffff:${v4}`, value };
  }
  return { text: v6Text(value, compress, upper), value };
}

const anyAddress: fc.Arbitrary<ModelAddress> = fc.oneof(
  fc.tuple(u32, fc.boolean()).map(([v4, plain]) => toAddress(MAPPED_BASE | v4, plain, false)),
  fc.tuple(u128, fc.boolean(), fc.boolean()).map(([v6, compress, upper]) => toAddress(v6, compress, upper)),
);

test('every generated CIDR parses, and an address is inside exactly when the model says so', () => {
  fc.assert(fc.property(anyRange, anyAddress, (range, address) => {
    const parsed = parseCIDR(range.text);
    assert.ok(parsed, range.text);
    assert.equal(isAddressInRanges(address.text, [parsed]), inModel(address.value, range), `${address.text} in ${range.text}`);
  }), { numRuns: 3000 });
});

test('edges: the first and last address are in, the neighbours outside are not', () => {
  fc.assert(fc.property(anyRange.chain((range) => fc.tuple(fc.constant(range), addressNear(range))), ([range, address]) => {
    const parsed = parseCIDR(range.text)!;
    assert.equal(isAddressInRanges(address.text, [parsed]), inModel(address.value, range), `${address.text} in ${range.text}`);
  }), { numRuns: 3000 });
});

test('an allowlist admits an address when any entry does (and everyone when empty)', () => {
  fc.assert(fc.property(fc.array(anyRange, { minLength: 0, maxLength: 6 }), anyAddress, (ranges, address) => {
    const expected = ranges.length === 0 || ranges.some((range) => inModel(address.value, range));
    assert.equal(isAddressAllowed(ranges.map((r) => r.text), address.text), expected);
  }), { numRuns: 2000 });
});

test('a network with host bits below its prefix is refused, never silently widened', () => {
  fc.assert(fc.property(u32, fc.integer({ min: 0, max: 31 }), (raw, bits) => {
    fc.pre((raw & ~maskOf(bits, 32) & 0xffffffffn) !== 0n);
    assert.equal(parseCIDR(`${v4Text(raw)}/${bits}`), null);
  }));
  fc.assert(fc.property(u128, fc.integer({ min: 0, max: 127 }), (raw, bits) => {
    fc.pre((raw & ~maskOf(bits, 128) & ALL_128) !== 0n);
    assert.equal(parseCIDR(`${v6Text(raw, true, false)}/${bits}`), null);
  }));
});

test('known answers at the edges', () => {
  const cases: Array<[string, string, boolean]> = [
    ['0.0.0.0/0', '255.255.255.255', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['::/0', '10.1.2.3', true], // ::/0 covers the IPv4-mapped block
    ['::/0', '2001:db8::1', true],
    ['10.0.0.0/8', '::ffff:10.200.0.1', true],
    ['10.0.0.0/8', '::ffff:a0a:101', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.0.0/8', '9.255.255.255', false],
    ['::ffff:10.0.0.0/104', '10.9.9.9', true],
    ['::ffff:0:0/96', '203.0.113.9', true],
    ['::ffff:0:0/96', '2001:db8::1', false],
    ['192.0.2.1', '192.0.2.1', true],
    ['192.0.2.1/32', '192.0.2.2', false],
    ['2001:db8::/32', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:db8::/32', '2001:db9::', false],
    ['2001:db8::1/128', '2001:DB8::1', true],
    ['::1/128', '127.0.0.1', false], // IPv6 loopback is not IPv4 loopback
    ['::/96', '10.0.0.1', false], // IPv4-compatible addresses (deprecated) are not IPv4
  ];
  for (const [range, address, expected] of cases) {
    assert.equal(isAddressInRanges(address, [parseCIDR(range)!]), expected, `${address} in ${range}`);
  }
});

test('malformed entries are refused, and a stored list with one never admits more', () => {
  for (const text of ['', '10.0.0.0/', '10.0.0.0/33', '10/8', '127.1', '0x7f.0.0.1', '010.0.0.1', '10.0.0.0/08x', '::/129', 'fe80::1%eth0',
    '10.0.0.0 /8', ' 10.0.0.0/8', '10.0.0.0/8\n', '1.2.3.4.5', 'example.com', '::ffff:10.0.0.1/95', '2001:db8::/-1', 'a'.repeat(65)]) {
    assert.equal(parseCIDR(text), null, JSON.stringify(text));
  }
  assert.deepEqual(parseCIDRs(['bogus', '10.0.0.0/8']).length, 1);
  assert.equal(isAddressAllowed(['bogus'], '10.0.0.1'), false, 'a list of nothing valid admits nobody');
  assert.equal(isAddressAllowed(['10.0.0.0/8'], null), false);
  assert.equal(isAddressAllowed([], null), true);
  assert.equal(isAddressInRanges('not an address', [parseCIDR('0.0.0.0/0')!]), false);
  assert.equal(parseAddress('::ffff:192.0.2.1')?.toString(), '192.0.2.1');
});
