import { isAddressInRanges, parseCIDRs } from '../net/cidr.js';

/**
 * An org's IP allowlist decision. An empty list admits every address (API.md);
 * a non-empty one admits only addresses inside one of its CIDRs. A stored entry
 * that somehow fails to parse admits nothing (fail closed), it never widens the list.
 */
export function isAddressAllowed(allowlist: readonly string[], address: string | null): boolean {
  if (allowlist.length === 0) return true;
  if (address === null) return false;
  return isAddressInRanges(address, parseCIDRs(allowlist));
}
