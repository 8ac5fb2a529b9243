import { lookup as dnsLookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

/** A webhook destination Rampart will not call (SSRF defence, ASVS V1.3.6). */
export class DestinationRefused extends Error {
  override name = 'DestinationRefused';

  /** `unresolvable`: the host has no address; `refused`: it is not a destination webhooks may reach. */
  constructor(message: string, readonly kind: 'unresolvable' | 'refused' = 'refused') {
    super(message);
  }
}

export interface Destination {
  address: string;
  family: 4 | 6;
}

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const defaultResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Whether an address is ordinary public unicast. Everything else is refused:
 * loopback, private (RFC 1918, ULA), link-local (cloud metadata at
 * 169.254.169.254), carrier-grade NAT, unspecified, broadcast, multicast,
 * documentation and other reserved ranges, and IPv6 forms that embed an IPv4
 * address (6to4, Teredo, NAT64). An IPv4-mapped IPv6 address is judged by its
 * IPv4 address. Parsing is ipaddr.js's, so 127.1, 2130706433 and 0x7f.1 are 127.0.0.1.
 */
export function isPublicAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  const address = ipaddr.parse(ip);
  if (address.kind() === 'ipv6') {
    const v6 = address as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return isPublicAddress(v6.toIPv4Address().toString());
    return v6.range() === 'unicast';
  }
  return address.range() === 'unicast';
}

/**
 * Checks a webhook URL's shape: https (plain http only with the insecure
 * private-network option, for local receivers), no credentials in it, and an
 * IP-literal host that is public. The WHATWG parser has already turned every
 * numeric spelling of an IPv4 address into dotted form.
 */
export function parseWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DestinationRefused('not a valid URL');
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) throw new DestinationRefused('the URL must use https');
  if (url.username || url.password) throw new DestinationRefused('the URL must not carry credentials');
  if (url.hash) throw new DestinationRefused('the URL must not have a fragment');
  const host = hostOf(url);
  if (!host) throw new DestinationRefused('the URL has no host');
  if (ipaddr.isValid(host)) {
    if (!allowPrivate && !isPublicAddress(host)) throw new DestinationRefused('the URL points to a private, loopback or link-local address');
  } else if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.'))) {
    throw new DestinationRefused('the URL must name a public host');
  }
  return url;
}

/**
 * Resolves the URL's host and refuses it unless EVERY address is public (a
 * name may resolve to several). Called at registration and again at each
 * delivery, whose connection then goes to the address checked here and no
 * other (a DNS answer that changes in between — rebinding — cannot redirect it).
 */
export async function resolveDestination(url: URL, allowPrivate: boolean, resolver: Resolver = defaultResolver): Promise<Destination> {
  const host = hostOf(url);
  if (ipaddr.isValid(host)) {
    if (!allowPrivate && !isPublicAddress(host)) throw new DestinationRefused('the URL points to a private, loopback or link-local address');
    return { address: host, family: ipaddr.parse(host).kind() === 'ipv6' ? 6 : 4 };
  }
  let answers: Array<{ address: string; family: number }>;
  try {
    answers = await resolver(host);
  } catch {
    throw new DestinationRefused('the host does not resolve', 'unresolvable');
  }
  if (answers.length === 0) throw new DestinationRefused('the host does not resolve', 'unresolvable');
  if (!allowPrivate && answers.some((answer) => !isPublicAddress(answer.address))) {
    throw new DestinationRefused('the host resolves to a private, loopback or link-local address');
  }
  const first = answers[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

/**
 * The operator's allowlist of webhook hosts (WEBHOOK_ALLOWED_HOSTS): empty allows any public
 * host; otherwise the URL's host must equal an entry, or end with one written `*.example.com`
 * (any subdomain, not example.com itself). Checked at registration and at every delivery, so
 * narrowing the list stops deliveries to hosts it no longer names.
 */
export function assertAllowedHost(url: URL, allowedHosts: readonly string[]): void {
  if (allowedHosts.length === 0) return;
  const host = hostOf(url).toLowerCase();
  const allowed = allowedHosts.some((entry) => (entry.startsWith('*.') ? host.endsWith(entry.slice(1)) && host.length > entry.length - 1 : host === entry));
  if (!allowed) throw new DestinationRefused('the host is not on this server\'s list of webhook destinations (WEBHOOK_ALLOWED_HOSTS)');
}

function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}
