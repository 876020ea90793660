// Which networks agents may connect from (relay.allow_networks), and the client address that is checked.
// Behind a proxy the TCP peer is the proxy; the client's address is then the entry the proxy appended to
// X-Forwarded-For. Only the configured proxies (relay.trusted_proxies) are believed, and the header is read
// from the right: every entry left of the last untrusted hop was written by the client and proves nothing
// (code-remote took the leftmost entry, so `X-Forwarded-For: 100.64.0.1` got anyone in).
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { UsageError } from '../../core/errors.js';

/** An address in canonical form: IPv4-mapped IPv6 (`::ffff:100.64.0.1`, `::ffff:6440:1`) becomes the IPv4 address. */
export function normalizeAddress(address: string): string | null {
  const a = address.trim();
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return null;
  const dotted = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (dotted && isIPv4(dotted[1]!)) return dotted[1]!;
  const hex = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(a);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return a.toLowerCase();
}

/**
 * What one client is counted by (connections per address, failed and successful logins): an IPv4
 * address as it is, an IPv6 address by its /64 (`2001:db8:1:2::/64`): whoever holds one address of a
 * network holds its whole /64, and counted one by one, each of its addresses had a limit of its own.
 * IPv4-mapped IPv6 is the IPv4 address, NAT64's 64:ff9b::a.b.c.d that IPv4 address marked as such. Anything
 * else (not an address) is its own key.
 */
export function clientKey(address: string): string {
  const a = normalizeAddress(address);
  if (a === null) return address;
  if (isIPv4(a)) return a;
  const groups = ipv6Groups(a);
  // NAT64's well-known prefix (RFC 6052): every IPv4 client a translator brings in shares one /64, so each
  // counts by the IPv4 address it embeds. Only for counting: no network check believes the embedded address.
  if (groups.slice(0, 6).join(':') === '64:ff9b:0:0:0:0') {
    const [hi, lo] = groups.slice(6).map((g) => parseInt(g, 16)) as [number, number];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255} (NAT64)`;
  }
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, in hex without leading zeros (`::` expanded, a dotted tail as two groups). */
function ipv6Groups(address: string): string[] {
  let a = address.replace(/%.*$/, ''); // a zone (fe80::1%eth0) is not part of the address
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dotted) {
    const [b1, b2, b3, b4] = dotted.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, dotted.index)}${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const split = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const groups = tail === undefined ? split(head) : [...split(head), ...Array<string>(8 - split(head).length - split(tail).length).fill('0'), ...split(tail)];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

/** A set of CIDR blocks (`100.64.0.0/10`, `fd7a:115c:a1e0::/48`) or single addresses. */
export class Networks {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(readonly cidrs: readonly string[], what: string) {
    for (const cidr of cidrs) {
      const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(cidr.trim());
      const address = m ? normalizeAddress(m[1]!) : null;
      if (!m || address === null) throw new UsageError(`${what}: "${cidr}" is not an address or CIDR block (e.g. 100.64.0.0/10)`);
      const v4 = isIPv4(address);
      const max = v4 ? 32 : 128;
      // A mapped IPv6 block (::ffff:a.b.c.d/104) is its IPv4 block.
      const prefix = m[2] === undefined ? max : Number(m[2]) - (v4 && !isIPv4(m[1]!) ? 96 : 0);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new UsageError(`${what}: "${cidr}" has a prefix length outside 0-${max}`);
      this.list.addSubnet(address, prefix, v4 ? 'ipv4' : 'ipv6');
    }
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    const a = normalizeAddress(address);
    if (a === null) return false;
    return this.list.check(a, isIPv4(a) ? 'ipv4' : 'ipv6');
  }
}

/**
 * The client's address: the TCP peer, unless the peer is a trusted proxy; then the rightmost
 * X-Forwarded-For entry that is not itself a trusted proxy. Null when that cannot be told (a trusted
 * proxy sent no usable header): the caller refuses.
 */
export function clientAddress(peer: string, forwardedFor: string | string[] | undefined, trusted: Networks): string | null {
  const direct = normalizeAddress(peer);
  if (direct === null) return null;
  if (!trusted.has(direct)) return direct;
  // Several headers are one list, in order (RFC 7230 §3.2.2).
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '')).split(',').map((h) => h.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]!);
    if (hop === null) return null;
    if (!trusted.has(hop)) return hop;
  }
  return null;
}
