import ipaddr from 'ipaddr.js';
import { ConfigError } from '../errors.js';

export type ParsedCIDR = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Parses one CIDR (or a bare address, meaning /32 or /128). Returns null when it
 * is not one. Bits set below the prefix (10.0.0.1/8) are refused: such an entry is
 * almost always a typo, and silently widening it would allow more than intended.
 */
export function parseCIDR(text: string): ParsedCIDR | null {
  // No zone ids (fe80::1%eth0): they name an interface, not a range of clients.
  if (typeof text !== 'string' || text.length > 64 || text.includes('%')) return null;
  const slash = text.indexOf('/');
  const addressPart = slash === -1 ? text : text.slice(0, slash);
  // Strict forms only: ipaddr.js would also take "127.1" or "0x7f.0.0.1", which people misread.
  const isV4 = ipaddr.IPv4.isValidFourPartDecimal(addressPart);
  if (!isV4 && !(addressPart.includes(':') && ipaddr.IPv6.isValid(addressPart))) return null;
  try {
    const address = ipaddr.parse(addressPart);
    const maxBits = address.kind() === 'ipv4' ? 32 : 128;
    if (slash === -1) return [address, maxBits];
    const bitsText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bitsText)) return null;
    const bits = Number(bitsText);
    if (bits > maxBits) return null;
    const network = address.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(text)
      : ipaddr.IPv6.networkAddressFromCIDR(text);
    if (network.toString() !== address.toString()) return null;
    return [address, bits];
  } catch {
    return null;
  }
}

export function parseCIDRList(values: readonly string[], name: string): ParsedCIDR[] {
  return values.map((value) => {
    const parsed = parseCIDR(value);
    if (!parsed) throw new ConfigError(`${name}: "${value}" is not a CIDR with a clean network address`);
    return parsed;
  });
}

/**
 * Normalizes an address as seen on a socket: IPv4-mapped IPv6 (::ffff:1.2.3.4)
 * becomes plain IPv4 so that v4 rules match it. Returns null for garbage.
 */
export function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    const address = ipaddr.parse(text);
    if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
      return (address as ipaddr.IPv6).toIPv4Address();
    }
    return address;
  } catch {
    return null;
  }
}

/**
 * Whether `address` falls inside any of `ranges`. Addresses are compared in one
 * 128-bit space in which IPv4 lives at ::ffff:0:0/96 (RFC 4291 §2.5.5.2): a v4
 * client matches v4 ranges, and v6 ranges that cover its IPv4-mapped form
 * (::ffff:10.0.0.0/104, or ::/0); a v4-mapped client address counts as the v4 one.
 */
export function isAddressInRanges(address: string, ranges: readonly ParsedCIDR[]): boolean {
  const parsed = parseAddress(address);
  if (!parsed) return false;
  const mapped = parsed.kind() === 'ipv4' ? (parsed as ipaddr.IPv4).toIPv4MappedAddress() : null;
  for (const range of ranges) {
    if (parsed.kind() === range[0].kind()) {
      if (parsed.match(range)) return true;
    } else if (mapped && range[0].kind() === 'ipv6' && mapped.match(range)) {
      return true;
    }
  }
  return false;
}

/** Parses a list already validated (a stored allowlist); entries that do not parse are skipped. */
export function parseCIDRs(values: readonly string[]): ParsedCIDR[] {
  const ranges: ParsedCIDR[] = [];
  for (const value of values) {
    const parsed = parseCIDR(value);
    if (parsed) ranges.push(parsed);
  }
  return ranges;
}

/** The entries of `values` that are not clean CIDRs or addresses. */
export function invalidCIDRs(values: readonly string[]): string[] {
  return values.filter((value) => parseCIDR(value) === null);
}
