// One POST to a notification service, refusing internal addresses unless the channel allows them.
//
// A channel URL comes from config, but the names in it resolve at send time: a public name that
// resolves to 127.0.0.1, 169.254.169.254 (cloud metadata) or a LAN address would turn remux into a
// request forger against its own network. The check runs inside the connection's own DNS lookup, so
// the address checked is the address connected to (no second resolution to rebind).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Loopback, private, link-local, shared (CGNAT), unique-local, multicast and unspecified ranges; IPv4-mapped IPv6 is matched as IPv4. */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv6');
}

export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && INTERNAL.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export class DeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export interface PostOptions {
  url: string;
  body: string | Buffer;
  headers: Record<string, string>;
  allowInternal: boolean;
  timeoutMs: number;
}

export interface PostResult {
  status: number;
  /** The start of the response body, for error messages. */
  text: string;
}

const RESPONSE_KEPT = 2048;

export function post(options: PostOptions): Promise<PostResult> {
  const url = new URL(options.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return Promise.reject(new DeliveryError(`${options.url}: only http and https URLs can be notified`));
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (!options.allowInternal && isInternalAddress(literal)) return Promise.reject(internal(url.host, literal));
  const guardedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const usable = options.allowInternal ? addresses : addresses.filter((a) => !isInternalAddress(a.address));
      if (usable.length === 0) return callback(internal(hostname, addresses.map((a) => a.address).join(', ')), '', 0);
      if (lookupOptions.all) return (callback as unknown as (e: null, all: LookupAddress[]) => void)(null, usable);
      const first = usable[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
        lookup: guardedLookup,
        timeout: options.timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < RESPONSE_KEPT) text += chunk.slice(0, RESPONSE_KEPT - text.length);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new DeliveryError(`${url.host}: no answer within ${options.timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof DeliveryError ? err : new DeliveryError(`${url.host}: ${err.message}`)));
    req.end(options.body);
  });
}

function internal(host: string, addresses: string): DeliveryError {
  return new DeliveryError(`${host} resolves to an internal address (${addresses}); set allow_internal: true on the channel if that is intended`);
}
