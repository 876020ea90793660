// Strict host key verification against an OpenSSH known_hosts file, with OpenSSH's semantics
// (hostfile.c and match.c; the tests use ssh-keygen -F and ssh itself as the reference):
// - Lines: optional marker (@revoked, @cert-authority), host field, key type, base64 key, comment.
//   Only spaces and tabs separate fields; a trailing CR is ignored. Invalid lines are skipped: they
//   never trust, never count as a known key, never revoke.
// - Host field: comma list of patterns (`*`, `?`, `!negation`, ASCII case-insensitive) matched
//   against `host`, or `[host]:port` when the port is not 22; or one hashed `|1|salt|hmac` entry.
// - A host is "changed" when it has plain entries and none holds the presented key, whatever their
//   key types: ssh 9.x refuses an ed25519 key for a host known only by an RSA key with "REMOTE HOST
//   IDENTIFICATION HAS CHANGED". Clients avoid that by preferring the key types already known for a
//   host (see findHostEntries).
// - @revoked matching the host refuses its key even if another line trusts it. Unlike ssh, a tab
//   after the marker is accepted too: reading more revocations can only refuse more.
// - @cert-authority lines are ignored: certificates are not supported, and a CA key never trusts a
//   plain host key.
// - On a port other than 22 with no entry at all for [host]:port, an entry for the bare host that
//   holds exactly the presented key is accepted, as ssh does ("found matching key w/out port").
import { createHash, createHmac, ECDH, randomBytes } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { quoteWord } from '../command/render.js';

export type HostKeyCheck =
  | { status: 'trusted'; line: number }
  | { status: 'unknown' }
  | { status: 'changed'; lines: number[] }
  | { status: 'revoked'; line: number };

export type HostKeyRefusal = Exclude<HostKeyCheck, { status: 'trusted' }>;

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker: 'none' | 'revoked' | 'cert-authority';
  /** The raw host field: a pattern list or a hashed `|1|salt|hmac`. */
  hosts: string;
  /** The key's type (ssh-rsa also for a line that names rsa-sha2-256/512). */
  keyType: string;
  /** The public key blob, canonically re-encoded. */
  key: Buffer;
}

interface ParsedEntry extends KnownHostEntry {
  /** For hashed entries: the decoded salt. */
  salt: Buffer | null;
}

const HASH_MAGIC = '|1|';
const SHA1_LEN = 20;
// match.c copies each subpattern into a 1024-byte buffer and gives up on longer ones.
const MAX_SUBPATTERN = 1023;
// sshbuf's bignum limit (16384 bits) plus a sign byte; RSA below 1024 bits is refused by OpenSSH.
const MAX_MPINT = 2049;
const MIN_RSA_BITS = 1024;

const EC_CURVES: Record<string, { name: string; openssl: string }> = {
  'ecdsa-sha2-nistp256': { name: 'nistp256', openssl: 'prime256v1' },
  'ecdsa-sha2-nistp384': { name: 'nistp384', openssl: 'secp384r1' },
  'ecdsa-sha2-nistp521': { name: 'nistp521', openssl: 'secp521r1' },
  'sk-ecdsa-sha2-nistp256@openssh.com': { name: 'nistp256', openssl: 'prime256v1' },
};

/** Signature algorithm names that OpenSSH also accepts as the name of a key type. */
const ALGORITHM_KEY_TYPE: Record<string, string> = {
  'rsa-sha2-256': 'ssh-rsa',
  'rsa-sha2-512': 'ssh-rsa',
  'webauthn-sk-ecdsa-sha2-nistp256@openssh.com': 'sk-ecdsa-sha2-nistp256@openssh.com',
};

// ---------------------------------------------------------------------------------------------
// Key blobs

class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}

  string(): Buffer | null {
    if (this.off + 4 > this.buf.length) return null;
    const len = this.buf.readUInt32BE(this.off);
    if (this.off + 4 + len > this.buf.length) return null;
    const value = this.buf.subarray(this.off + 4, this.off + 4 + len);
    this.off += 4 + len;
    return value;
  }

  /** An mpint as OpenSSH reads it: not negative, not too long; leading zeros dropped. */
  mpint(): Buffer | null {
    const raw = this.string();
    if (raw === null || raw.length > MAX_MPINT || (raw.length > 0 && (raw[0] as number) & 0x80)) return null;
    if (raw.length === MAX_MPINT && raw[0] !== 0) return null;
    let start = 0;
    while (start < raw.length && raw[start] === 0) start++;
    return raw.subarray(start);
  }

  done(): boolean {
    return this.off === this.buf.length;
  }
}

function sshString(value: Buffer | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function sshMpint(magnitude: Buffer): Buffer {
  return sshString(magnitude.length > 0 && (magnitude[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
}

function bitLength(magnitude: Buffer): number {
  return magnitude.length === 0 ? 0 : (magnitude.length - 1) * 8 + (magnitude[0] as number).toString(2).length;
}

function onCurve(point: Buffer, curve: string): boolean {
  try {
    return ECDH.convertKey(point, curve, undefined, undefined, 'uncompressed').length === point.length;
  } catch {
    return false;
  }
}

/**
 * Parses a public key blob of a supported plain type and re-encodes it canonically (minimal
 * mpints, as OpenSSH drops leading zeros), so equal keys compare equal byte for byte. Null if
 * malformed.
 */
function canonicalKey(blob: Buffer): { type: string; key: Buffer } | null {
  const r = new Reader(blob);
  const typeBytes = r.string();
  if (typeBytes === null) return null;
  const type = typeBytes.toString('latin1');
  const parts: Buffer[] = [sshString(type)];
  switch (type) {
    case 'ssh-ed25519':
    case 'sk-ssh-ed25519@openssh.com': {
      const pk = r.string();
      if (pk === null || pk.length !== 32) return null;
      parts.push(sshString(pk));
      break;
    }
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521':
    case 'sk-ecdsa-sha2-nistp256@openssh.com': {
      const curve = EC_CURVES[type] as { name: string; openssl: string };
      const name = r.string();
      const point = r.string();
      if (name === null || point === null || name.toString('latin1') !== curve.name) return null;
      // OpenSSH takes uncompressed points only, and only points on the curve.
      if (point[0] !== 0x04 || !onCurve(point, curve.openssl)) return null;
      parts.push(sshString(curve.name), sshString(point));
      break;
    }
    case 'ssh-rsa': {
      const e = r.mpint();
      const n = r.mpint();
      if (e === null || n === null || e.length === 0 || bitLength(n) < MIN_RSA_BITS) return null;
      parts.push(sshMpint(e), sshMpint(n));
      break;
    }
    case 'ssh-dss': {
      const values = [r.mpint(), r.mpint(), r.mpint(), r.mpint()];
      if (values.some((v) => v === null || v.length === 0)) return null;
      parts.push(...(values as Buffer[]).map(sshMpint));
      break;
    }
    default:
      return null;
  }
  if (type.startsWith('sk-')) {
    const application = r.string();
    if (application === null) return null;
    parts.push(sshString(application));
  }
  return r.done() ? { type, key: Buffer.concat(parts) } : null;
}

/** Strict base64 as OpenSSH's b64_pton: alphabet, padding, no stray bits. Null otherwise. */
function decodeBase64(text: string): Buffer | null {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : null;
}

function keyBytes(key: Buffer | string): Buffer {
  if (Buffer.isBuffer(key)) return key;
  const buf = decodeBase64(key);
  if (buf === null) throw new Error('host key is not valid base64');
  return buf;
}

/** The key type a public key blob declares, or null when the blob is malformed or unsupported. */
export function keyBlobType(blob: Buffer): string | null {
  return canonicalKey(blob)?.type ?? null;
}

/** Validates a presented key against its claimed type (an RSA signature algorithm names ssh-rsa). */
function presentedKey(keyType: string, key: Buffer | string): { type: string; key: Buffer } {
  const parsed = canonicalKey(keyBytes(key));
  if (parsed === null) throw new Error(`malformed or unsupported ${keyType} host key`);
  if ((ALGORITHM_KEY_TYPE[keyType] ?? keyType) !== parsed.type) {
    throw new Error(`host key type ${keyType} does not match the key, which is ${parsed.type}`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Host patterns

/** Host string as ssh looks it up: lower case, `[host]:port` unless the port is 22. */
function hostKey(host: string, port: number): string {
  const lower = asciiLower(host);
  return port === 22 ? lower : `[${lower}]:${port}`;
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** match.c works on bytes: compare UTF-8 bytes, one latin1 char per byte. */
function bytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** `*` and `?` wildcards; backtracks only to the last star: O(len(s)·len(p)), never exponential. */
function matchPattern(s: string, p: string): boolean {
  let si = 0;
  let pi = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === s[si])) {
      si++;
      pi++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star !== -1) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** match_pattern_list(): 1 on a positive match, -1 if a negated subpattern matches, else 0. */
function matchPatternList(host: string, patterns: string): -1 | 0 | 1 {
  const subs = patterns.split(',');
  // match.c stops at the end of the string: a trailing comma adds no empty subpattern.
  if (patterns.endsWith(',')) subs.pop();
  let positive = false;
  for (const raw of subs) {
    const negated = raw.startsWith('!');
    const sub = asciiLower(negated ? raw.slice(1) : raw);
    if (sub.length >= MAX_SUBPATTERN) return 0;
    if (matchPattern(host, sub)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

function hashHost(salt: Buffer, host: string): string {
  return `${HASH_MAGIC}${salt.toString('base64')}|${createHmac('sha1', salt).update(host, 'utf8').digest('base64')}`;
}

/** Salt of a `|1|salt|hmac` field, or null when the field is malformed (the line is invalid). */
function hashedSalt(field: string): Buffer | null {
  if (!field.startsWith(HASH_MAGIC)) return null;
  const end = field.indexOf('|', HASH_MAGIC.length);
  if (end < 0) return null;
  const salt = decodeBase64(field.slice(HASH_MAGIC.length, end));
  return salt !== null && salt.length === SHA1_LEN ? salt : null;
}

function entryMatches(e: ParsedEntry, host: string): boolean {
  if (e.salt !== null) return hashHost(e.salt, host) === e.hosts;
  return matchPatternList(bytes(host), bytes(e.hosts)) === 1;
}

// ---------------------------------------------------------------------------------------------
// Parsing and lookup

function parseLine(text: string, line: number): ParsedEntry | null {
  let rest = text.replace(/^[ \t]+/, '');
  if (rest === '' || rest.startsWith('#')) return null;
  let marker: KnownHostEntry['marker'] = 'none';
  if (rest.startsWith('@')) {
    const m = /^(@[^ \t]*)[ \t]+/.exec(rest);
    if (m === null) return null;
    if (m[1] === '@revoked') marker = 'revoked';
    else if (m[1] === '@cert-authority') marker = 'cert-authority';
    else return null;
    rest = rest.slice(m[0].length);
    // Only one marker per line.
    if (rest.startsWith('@')) return null;
  }
  const [hosts = '', keyType = '', keyText = ''] = rest.split(/[ \t]+/);
  let salt: Buffer | null = null;
  if (hosts.startsWith('|')) {
    salt = hashedSalt(hosts);
    if (salt === null) return null;
  }
  const blob = decodeBase64(keyText);
  const parsed = blob === null ? null : canonicalKey(blob);
  if (parsed === null || (ALGORITHM_KEY_TYPE[keyType] ?? keyType) !== parsed.type) return null;
  return { line, marker, hosts, keyType: parsed.type, key: parsed.key, salt };
}

/** The latest text parsed, with its entries: each connection of a fan-out looks up the same file two or three times. */
let lastParsed: { text: string; entries: readonly ParsedEntry[] } | null = null;

function parse(text: string): readonly ParsedEntry[] {
  if (lastParsed?.text === text) return lastParsed.entries;
  const entries: ParsedEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const entry = parseLine(raw.endsWith('\r') ? raw.slice(0, -1) : raw, i + 1);
    if (entry !== null) entries.push(entry);
  });
  lastParsed = { text, entries };
  return entries;
}

function publicEntry({ salt: _salt, ...entry }: ParsedEntry): KnownHostEntry {
  return entry;
}

/** Every valid line of a known_hosts text. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  return parse(text).map(publicEntry);
}

/**
 * Valid lines whose host field matches host:port (what `ssh-keygen -l -F` lists), in file order.
 * Callers negotiating a host key algorithm should prefer the keyTypes of the plain entries.
 */
export function findHostEntries(knownHostsText: string, host: string, port: number): KnownHostEntry[] {
  const h = hostKey(host, port);
  return parse(knownHostsText).filter((e) => entryMatches(e, h)).map(publicEntry);
}

function lookup(entries: readonly ParsedEntry[], host: string, key: Buffer): HostKeyCheck {
  let trusted: number | null = null;
  const changed: number[] = [];
  for (const e of entries) {
    if (e.marker === 'cert-authority' || !entryMatches(e, host)) continue;
    const same = e.key.equals(key);
    if (e.marker === 'revoked') {
      if (same) return { status: 'revoked', line: e.line };
    } else if (same) {
      trusted ??= e.line;
    } else {
      changed.push(e.line);
    }
  }
  if (trusted !== null) return { status: 'trusted', line: trusted };
  return changed.length > 0 ? { status: 'changed', lines: changed } : { status: 'unknown' };
}

/**
 * Checks the key a host presented. keyType is the key's type or the negotiated host key algorithm
 * (rsa-sha2-256/512 name an ssh-rsa key); key is the public key blob or its base64. Throws if the
 * key is malformed, unsupported or not of that type.
 */
export function checkHostKey(
  knownHostsText: string,
  host: string,
  port: number,
  keyType: string,
  key: Buffer | string,
): HostKeyCheck {
  const presented = presentedKey(keyType, key);
  const entries = parse(knownHostsText);
  const result = lookup(entries, hostKey(host, port), presented.key);
  if (result.status === 'unknown' && port !== 22) {
    const bare = lookup(entries, hostKey(host, 22), presented.key);
    if (bare.status === 'trusted' || bare.status === 'revoked') return bare;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Recording keys (--accept-new) and messages

/**
 * A known_hosts line for a key. The host must be a plain name or address: patterns, spaces or
 * commas could widen what the line trusts. Hashed lines hide the host name (ssh HashKnownHosts).
 */
export function knownHostsLine(
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
  opts: { hashed: boolean },
): string {
  if (!/^[A-Za-z0-9._:%-]+$/.test(host)) throw new Error(`not a host name or address: ${JSON.stringify(host)}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port: ${port}`);
  const parsed = presentedKey(keyType, keyBase64);
  const h = hostKey(host, port);
  const field = opts.hashed ? hashHost(randomBytes(SHA1_LEN), h) : h;
  return `${field} ${parsed.type} ${parsed.key.toString('base64')}`;
}

/**
 * Appends one line, creating the directory (0700) and file (0600) if missing. One write on an
 * O_APPEND descriptor, so concurrent appenders never interleave; a missing final newline in the
 * existing file is supplied first so the line never joins the previous one (appenders racing on
 * such a file may each supply one: blank lines are harmless).
 */
export async function appendKnownHost(file: string, line: string): Promise<void> {
  if (/[\r\n]/.test(line) || parseKnownHosts(line).length !== 1) throw new Error('not a single valid known_hosts line');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const fh = await open(file, 'a+', 0o600);
  try {
    const { size } = await fh.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
    await fh.write(`${prefix}${line}\n`);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** OpenSSH's SHA256 fingerprint: `SHA256:` + unpadded base64 of the key blob's digest. */
export function fingerprint(key: Buffer | string): string {
  return `SHA256:${createHash('sha256').update(keyBytes(key)).digest('base64').replace(/=+$/, '')}`;
}

/** The refusal a user sees; name is the configured host name, host:port where it was reached. */
export function hostKeyRefusalMessage(
  check: HostKeyRefusal,
  ctx: { name: string; host: string; port: number; file: string; key: Buffer | string },
): string {
  const where = `${ctx.name} (${ctx.host.includes(':') ? `[${ctx.host}]` : ctx.host}:${ctx.port})`;
  const fp = fingerprint(ctx.key);
  // Only `hosts check` has --accept-new: the command that failed (client run, session, rpc…) does not.
  const accept = `remux hosts check ${quoteWord(ctx.name)} --accept-new`;
  switch (check.status) {
    case 'unknown':
      return `host key for ${where} is not in ${ctx.file}: refusing. Fingerprint ${fp} — verify it, then trust it with \`${accept}\` or add it with ssh-keyscan`;
    case 'changed': {
      const lines = `line${check.lines.length > 1 ? 's' : ''} ${check.lines.join(', ')}`;
      // As ssh-keygen -R names the host: bracketed with its port unless the port is 22.
      const entry = ctx.port === 22 ? ctx.host : `[${ctx.host}]:${ctx.port}`;
      return (
        `HOST KEY CHANGED for ${where}: it presented ${fp}, which ${ctx.file} does not list (known_hosts ${lines}): possible man-in-the-middle; refusing. ` +
        `If the host was given a new key and its admin confirms ${fp}: \`ssh-keygen -f ${quoteWord(ctx.file)} -R ${quoteWord(entry)}\`, then \`${accept}\``
      );
    }
    case 'revoked':
      return `host key ${fp} for ${where} is REVOKED (${ctx.file} line ${check.line}): refusing`;
  }
}
