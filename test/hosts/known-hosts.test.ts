// Host key verification against real data: keys from ssh-keygen, hashed lines from ssh-keygen -H
// and ssh-keyscan, lookups compared with `ssh-keygen -l -F`, and verdicts compared with what ssh
// itself decides when connecting to a fleet host with the same known_hosts text.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, ECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  appendKnownHost,
  checkHostKey,
  findHostEntries,
  fingerprint,
  hostKeyRefusalMessage,
  keyBlobType,
  knownHostsLine,
  parseKnownHosts,
  type HostKeyCheck,
} from '../../src/hosts/known-hosts.js';
import { startFleet, type Fleet, type FleetHost } from '../fleet/fleet.js';

const exec = promisify(execFile);

interface Key {
  type: string;
  b64: string;
  blob: Buffer;
  file: string;
}

let dir: string;
const keys: Record<string, Key> = {};
const k = (name: string): Key => keys[name] as Key;
const pub = (name: string): string => `${k(name).type} ${k(name).b64}`;

async function keygen(name: string, type: string, bits?: number): Promise<void> {
  const file = join(dir, name);
  await exec('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', '', '-f', file]);
  const [kt, b64] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/) as [string, string];
  keys[name] = { type: kt, b64, blob: Buffer.from(b64, 'base64'), file: `${file}.pub` };
}

function sshString(v: Buffer | string): Buffer {
  const body = Buffer.from(v);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

const blob = (...parts: Array<Buffer | string>): string => Buffer.concat(parts.map(sshString)).toString('base64');

/** ssh-rsa blob from a Node key, optionally with a needless leading zero on n. */
function rsaBlob(bits: number, padN = false): string {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });
  const mp = (b64u: string, extra: number): Buffer => {
    const v = Buffer.from(b64u, 'base64url');
    return Buffer.concat([Buffer.alloc(((v[0] as number) & 0x80 ? 1 : 0) + extra), v]);
  };
  return blob('ssh-rsa', mp(jwk.e as string, 0), mp(jwk.n as string, padN ? 1 : 0));
}

/** The lines (and markers) `ssh-keygen -l -F host` lists: OpenSSH's own lookup. */
async function oracle(file: string, host: string): Promise<string[]> {
  const res = await exec('ssh-keygen', ['-l', '-F', host, '-f', file]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  return [...res.stdout.matchAll(/^# Host \S* found: line (\d+) ?(\S*)/gm)].map((m) => `${m[1]}${m[2] ? ` ${m[2]}` : ''}`);
}

function ours(text: string, host: string, port: number): string[] {
  const label = { none: '', revoked: ' REVOKED', 'cert-authority': ' CA' } as const;
  return findHostEntries(text, host, port).map((e) => `${e.line}${label[e.marker]}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remux-kh-'));
  await Promise.all([
    keygen('ed1', 'ed25519'),
    keygen('ed2', 'ed25519'),
    keygen('ed3', 'ed25519'),
    keygen('ec256', 'ecdsa', 256),
    keygen('ec384', 'ecdsa', 384),
    keygen('ec521', 'ecdsa', 521),
    keygen('rsa', 'rsa', 2048),
    keygen('dsa', 'dsa'),
  ]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('lookup agrees with ssh-keygen -F', () => {
  test('patterns, ports, markers, hashed entries and garbage lines', async () => {
    const ecPoint = Buffer.from(k('ec256').blob.subarray(39));
    const compressed = ECDH.convertKey(ecPoint, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    const offCurve = Buffer.from(ecPoint);
    offCurve[offCurve.length - 1] = (offCurve[offCurve.length - 1] as number) ^ 1;
    const skEd = blob('sk-ssh-ed25519@openssh.com', randomBytes(32), 'ssh:');
    const plain = [
      '# a comment',
      '',
      `web1 ${pub('ed1')}`,
      `WEB2,db1 ${pub('ec256')} comment with spaces`,
      `*.example.com ${pub('ec384')}`,
      `*,!web1,!*.internal ${pub('ec521')}`,
      `web? ${pub('rsa')}`,
      `[web1]:2222 ${pub('ed2')}`,
      `[10.0.0.5]:*,10.0.0.? ${pub('dsa')}`,
      `@revoked web1 ${pub('ed3')}`,
      `@cert-authority *.example.com ${pub('ed3')}`,
      `\t  db1\t${pub('ed2')}\t# leading and inner tabs`,
      `db1 ${pub('ed1')}\r`,
      `::1 ${pub('ed3')}`,
      `[::1]:2200 ${pub('ed1')}`,
      `web1 rsa-sha2-256 ${k('rsa').b64}`,
      `web1 ssh-rsa ${rsaBlob(1024, true)}`,
      `web1 sk-ssh-ed25519@openssh.com ${skEd}`,
      `web1,x,y,z,,${'a'.repeat(1100)} ${pub('ed2')}`,
      `${'b'.repeat(1100)},web2 ${pub('ed2')}`,
      `web1, ${pub('ed3')}`,
    ].join('\n');
    const garbage = [
      'web1',
      'web1 ssh-ed25519',
      `web1 #${pub('ed1')}`,
      `web1 ED25519 ${k('ed1').b64}`,
      `web1 ssh-ed25519 ${k('rsa').b64}`,
      `web1 ssh-ed25519 ${k('ed1').b64}=`,
      `web1 ssh-ed25519 ${k('ed1').b64.slice(0, -4)}`,
      `web1 ssh-ed25519 ${k('ed1').b64}#x`,
      `web1 ssh-ed25519 !!!!`,
      `web1 ecdsa-sha2-nistp384 ${k('ec256').b64}`,
      `web1 ecdsa-sha2-nistp256 ${blob('ecdsa-sha2-nistp256', 'nistp256', offCurve)}`,
      `web1 ecdsa-sha2-nistp256 ${blob('ecdsa-sha2-nistp256', 'nistp256', compressed)}`,
      `web1 ssh-rsa ${rsaBlob(768)}`,
      `web1 ssh-ed25519 ${blob('ssh-ed25519', randomBytes(31))}`,
      `web1 ssh-ed25519 ${blob('ssh-ed25519', randomBytes(32), 'trailing')}`,
      `web1 ssh-foo ${blob('ssh-foo', randomBytes(32))}`,
      `@bogus web1 ${pub('ed1')}`,
      `@revoked @revoked web1 ${pub('ed1')}`,
      `@ web1 ${pub('ed1')}`,
      `|1|bm90IDIwIGJ5dGVz|AAAA ${pub('ed1')}`,
      `|2|${randomBytes(20).toString('base64')}|AAAA ${pub('ed1')}`,
      `|1|${randomBytes(20).toString('base64')} ${pub('ed1')}`,
      '\u0000\u0001 \uFFFD binary ☃',
    ].join('\n');
    // Hashed copies of some lines, made by ssh-keygen itself.
    const toHash = join(dir, 'to-hash');
    writeFileSync(toHash, [`web1 ${pub('ec256')}`, `[web1]:2222 ${pub('ed1')}`, `10.0.0.5 ${pub('ed3')}`].join('\n') + '\n');
    await exec('ssh-keygen', ['-H', '-f', toHash]);
    const hashed = readFileSync(toHash, 'utf8').trim();
    assert.match(hashed, /^\|1\|/);
    const text = [plain, garbage, hashed, `@revoked ${hashed.split('\n')[0]}`].join('\n') + '\n';
    const file = join(dir, 'oracle-known-hosts');
    writeFileSync(file, text);

    const queries: Array<[string, number]> = [
      ['web1', 22], ['web2', 22], ['db1', 22], ['webx', 22], ['web12', 22], ['a.example.com', 22], ['b.internal', 22],
      ['other', 22], ['web1', 2222], ['web2', 2222], ['10.0.0.5', 22], ['10.0.0.5', 2222], ['10.0.0.50', 22],
      ['::1', 22], ['::1', 2200], ['x', 22], ['', 22],
    ];
    for (const [host, port] of queries) {
      const hostString = port === 22 ? host : `[${host}]:${port}`;
      assert.deepEqual(ours(text, host, port), await oracle(file, hostString), `lookup of ${hostString}`);
    }
    // ssh lower-cases the host it connects to; so does checkHostKey.
    assert.deepEqual(ours(text, 'WEB1', 22), ours(text, 'web1', 22));
  });
});

describe('checkHostKey', () => {
  const check = (text: string, host: string, port: number, name: string, type = k(name).type): HostKeyCheck =>
    checkHostKey(text, host, port, type, k(name).blob);

  test('trusted, unknown, changed and revoked', () => {
    const text = [`# keys`, `web1 ${pub('ed1')}`, `web2 ${pub('ed2')}`, `web1 ${pub('ec256')}`, `@revoked * ${pub('ed3')}`].join('\n');
    assert.deepEqual(check(text, 'web1', 22, 'ed1'), { status: 'trusted', line: 2 });
    assert.deepEqual(check(text, 'web1', 22, 'ec256'), { status: 'trusted', line: 4 });
    assert.deepEqual(check(text, 'web3', 22, 'ed1'), { status: 'unknown' });
    assert.deepEqual(check(text, 'web2', 22, 'ed1'), { status: 'changed', lines: [3] });
    // A key type the host is not known by is still a change, as in ssh.
    assert.deepEqual(check(text, 'web1', 22, 'rsa'), { status: 'changed', lines: [2, 4] });
    assert.deepEqual(check(text, 'anything', 22, 'ed3'), { status: 'revoked', line: 5 });
  });

  test('a revoked key is refused even where another line trusts it, before or after', () => {
    const trustFirst = `web1 ${pub('ed1')}\n@revoked web1 ${pub('ed1')}\n`;
    const revokeFirst = `@revoked web1 ${pub('ed1')}\nweb1 ${pub('ed1')}\n`;
    assert.deepEqual(check(trustFirst, 'web1', 22, 'ed1'), { status: 'revoked', line: 2 });
    assert.deepEqual(check(revokeFirst, 'web1', 22, 'ed1'), { status: 'revoked', line: 1 });
    assert.deepEqual(check(revokeFirst, 'web2', 22, 'ed1'), { status: 'unknown' }, 'revocation is per host pattern');
    assert.deepEqual(check(`@revoked\tweb1 ${pub('ed1')}\nweb1 ${pub('ed1')}`, 'web1', 22, 'ed1').status, 'revoked');
  });

  test('@cert-authority lines neither trust a plain key nor make it "changed"', () => {
    const text = `@cert-authority *.example.com ${pub('ed1')}\n@cert-authority * ${pub('ed2')}\n`;
    assert.deepEqual(check(text, 'a.example.com', 22, 'ed1'), { status: 'unknown' });
    assert.deepEqual(check(text, 'a.example.com', 22, 'ed3'), { status: 'unknown' });
  });

  test('wildcards, negation, case, brackets and the no-port fallback', () => {
    const text = [
      `*.example.com,!bad.example.com ${pub('ed1')}`,
      `[Web1]:2222 ${pub('ed2')}`,
      `web9 ${pub('ed3')}`,
      `[web9]:2200 ${pub('ed1')}`,
    ].join('\n');
    assert.equal(check(text, 'db.EXAMPLE.com', 22, 'ed1').status, 'trusted');
    assert.equal(check(text, 'bad.example.com', 22, 'ed1').status, 'unknown');
    assert.equal(check(text, 'db.example.com', 2222, 'ed1').status, 'trusted', 'bare-host entry holding the same key');
    assert.equal(check(text, 'db.example.com', 2222, 'ed2').status, 'unknown', 'bare-host entry with another key: not changed');
    assert.equal(check(text, 'web1', 2222, 'ed2').status, 'trusted');
    assert.equal(check(text, 'web1', 22, 'ed2').status, 'unknown');
    assert.deepEqual(check(text, 'web9', 2200, 'ed3'), { status: 'changed', lines: [4] }, 'no fallback once [host]:port is known');
  });

  test('hashed entries, including ssh-keyscan -H output style', () => {
    const hashedPlain = knownHostsLine('web1', 22, 'ssh-ed25519', k('ed1').b64, { hashed: true });
    const hashedPort = knownHostsLine('web1', 2222, 'ssh-ed25519', k('ed2').b64, { hashed: true });
    const text = `${hashedPlain}\n${hashedPort}\n`;
    assert.equal(check(text, 'web1', 22, 'ed1').status, 'trusted');
    assert.equal(check(text, 'WEB1', 22, 'ed1').status, 'trusted');
    assert.deepEqual(check(text, 'web1', 22, 'ed2'), { status: 'changed', lines: [1] });
    assert.equal(check(text, 'web1', 2222, 'ed2').status, 'trusted');
    assert.equal(check(text, 'web2', 22, 'ed1').status, 'unknown');
  });

  test('CRLF files, garbage lines and random junk never trust', () => {
    const crlf = `# windows\r\nweb1 ${pub('ed1')}\r\nweb2 ${pub('ed2')} comment\r\n`;
    assert.deepEqual(check(crlf, 'web1', 22, 'ed1'), { status: 'trusted', line: 2 });
    assert.deepEqual(check(crlf, 'web2', 22, 'ed2'), { status: 'trusted', line: 3 });
    const broken = [
      `web1 ssh-ed25519 ${k('ed1').b64.slice(1)}`,
      `web1 ecdsa-sha2-nistp256 ${k('ed1').b64}`,
      `web1 ${k('ed1').b64}`,
      `web1ssh-ed25519 ${k('ed1').b64}`,
      `@trusted web1 ${pub('ed1')}`,
    ].join('\n');
    assert.deepEqual(check(broken, 'web1', 22, 'ed1'), { status: 'unknown' });
    assert.deepEqual(parseKnownHosts(broken), []);

    // Deterministic junk built from fragments of real lines: must neither throw nor trust.
    let seed = 42;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const frags = ['web1', '*', '!', ',', ' ', '\t', '@revoked', '@cert-authority', '|1|', '|', '[', ']:22', '#', '\r', 'ssh-ed25519', 'ssh-rsa', 'AAAA', '=', k('ed1').b64.slice(0, 20), '\u0000', 'é'];
    const junk = Array.from({ length: 3000 }, () => Array.from({ length: 1 + rnd(8) }, () => frags[rnd(frags.length)]).join('')).join('\n');
    assert.doesNotThrow(() => parseKnownHosts(junk));
    assert.equal(check(junk, 'web1', 22, 'ed1').status, 'unknown');
  });

  test('hostile patterns stay fast', () => {
    const pattern = `${'*a'.repeat(400)}*b`;
    const t0 = Date.now();
    assert.equal(check(`${pattern},${'?'.repeat(1000)}b ${pub('ed1')}`, 'a'.repeat(5000), 22, 'ed1').status, 'unknown');
    assert.equal(check(`${pattern} ${pub('ed1')}`, `${'a'.repeat(5000)}b`, 22, 'ed1').status, 'trusted');
    assert.ok(Date.now() - t0 < 500, `took ${Date.now() - t0} ms`);
  });

  test('key types: signature algorithm names, mismatches and malformed keys', () => {
    const text = `web1 ${pub('rsa')}\n`;
    assert.equal(checkHostKey(text, 'web1', 22, 'rsa-sha2-512', k('rsa').blob).status, 'trusted');
    assert.equal(checkHostKey(text, 'web1', 22, 'ssh-rsa', k('rsa').b64).status, 'trusted');
    assert.throws(() => checkHostKey(text, 'web1', 22, 'ssh-ed25519', k('rsa').blob), /does not match/);
    assert.throws(() => checkHostKey(text, 'web1', 22, 'ssh-ed25519', Buffer.from('junk')), /malformed/);
    assert.throws(() => checkHostKey(text, 'web1', 22, 'ssh-ed25519', 'not base64!'), /base64/);
    for (const name of ['ed1', 'ec256', 'ec384', 'ec521', 'rsa', 'dsa']) assert.equal(keyBlobType(k(name).blob), k(name).type);
    assert.equal(keyBlobType(Buffer.alloc(3)), null);
  });
});

describe('recording and reporting keys', () => {
  test('knownHostsLine: plain, bracketed and hashed lines that ssh-keygen finds', async () => {
    assert.equal(knownHostsLine('Web1.Example', 22, 'ssh-ed25519', k('ed1').b64, { hashed: false }), `web1.example ${pub('ed1')}`);
    assert.equal(knownHostsLine('10.0.0.5', 2222, 'rsa-sha2-256', k('rsa').b64, { hashed: false }), `[10.0.0.5]:2222 ${pub('rsa')}`);
    const lines = [
      knownHostsLine('web1', 22, 'ssh-ed25519', k('ed1').b64, { hashed: true }),
      knownHostsLine('fe80::1', 2222, 'ecdsa-sha2-nistp384', k('ec384').b64, { hashed: true }),
    ];
    const file = join(dir, 'hashed-known-hosts');
    writeFileSync(file, lines.join('\n') + '\n');
    assert.deepEqual(await oracle(file, 'web1'), ['1']);
    assert.deepEqual(await oracle(file, '[fe80::1]:2222'), ['2']);
    assert.notEqual(lines[0], knownHostsLine('web1', 22, 'ssh-ed25519', k('ed1').b64, { hashed: true }), 'fresh salt each time');
  });

  test('knownHostsLine refuses anything that could widen trust', () => {
    for (const host of ['*', 'web?', 'a,b', 'a b', '!web1', '[web1]:22', '', '#x', '|1|x|y', 'web1\n*', '@revoked']) {
      assert.throws(() => knownHostsLine(host, 22, 'ssh-ed25519', k('ed1').b64, { hashed: false }), /not a host/, host);
    }
    assert.throws(() => knownHostsLine('web1', 0, 'ssh-ed25519', k('ed1').b64, { hashed: false }), /port/);
    assert.throws(() => knownHostsLine('web1', 22, 'ssh-rsa', k('ed1').b64, { hashed: false }), /does not match/);
  });

  test('appendKnownHost creates 0700/0600, keeps lines whole, supplies a missing newline', async () => {
    const file = join(dir, 'fresh', '.ssh', 'known_hosts');
    await appendKnownHost(file, `web1 ${pub('ed1')}`);
    assert.equal(statSync(join(dir, 'fresh', '.ssh')).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, `${readFileSync(file, 'utf8')}web2 ${pub('ed2')}`);
    await appendKnownHost(file, `web3 ${pub('ed3')}`);
    assert.equal(readFileSync(file, 'utf8'), `web1 ${pub('ed1')}\nweb2 ${pub('ed2')}\nweb3 ${pub('ed3')}\n`);
    await Promise.all(Array.from({ length: 20 }, (_, i) => appendKnownHost(file, `h${i} ${pub('rsa')}`)));
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 23);
    assert.equal(parseKnownHosts(lines.join('\n')).length, 23);
    await assert.rejects(appendKnownHost(file, `web3 ${pub('ed1')}\n* ${pub('ed1')}`), /single valid/);
    await assert.rejects(appendKnownHost(file, 'garbage'), /single valid/);
  });

  test('fingerprints match ssh-keygen -l', async () => {
    for (const name of ['ed1', 'ec256', 'ec521', 'rsa', 'dsa']) {
      const { stdout } = await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', k(name).file]);
      assert.equal(fingerprint(k(name).blob), stdout.split(' ')[1]);
      assert.equal(fingerprint(k(name).b64), fingerprint(k(name).blob));
    }
    assert.equal(fingerprint(Buffer.from('x')), `SHA256:${createHash('sha256').update('x').digest('base64').replace(/=+$/, '')}`);
  });

  test('refusal messages name the host, the file, the lines and the fingerprint', () => {
    const ctx = { name: 'web1', host: '10.0.0.5', port: 22, file: '/root/.ssh/known_hosts', key: k('ed1').blob };
    const fp = fingerprint(k('ed1').blob);
    assert.equal(
      hostKeyRefusalMessage({ status: 'unknown' }, ctx),
      `host key for web1 (10.0.0.5:22) is not in /root/.ssh/known_hosts: refusing. Fingerprint ${fp} — verify it, then trust it with \`remux hosts check web1 --accept-new\` or add it with ssh-keyscan`,
    );
    const changed = hostKeyRefusalMessage({ status: 'changed', lines: [4, 9] }, ctx);
    assert.match(changed, /^HOST KEY CHANGED for web1 \(10\.0\.0\.5:22\)/);
    assert.match(changed, /\(known_hosts lines 4, 9\): possible man-in-the-middle; refusing\. /);
    assert.ok(changed.includes(fp));
    // What to do once the new key is confirmed, as commands that work pasted: ssh-keygen names a port other than 22 in brackets.
    assert.ok(changed.endsWith("`ssh-keygen -f /root/.ssh/known_hosts -R 10.0.0.5`, then `remux hosts check web1 --accept-new`"), changed);
    const onPort = hostKeyRefusalMessage({ status: 'changed', lines: [1] }, { ...ctx, port: 2222, file: '/tmp/my hosts' });
    assert.ok(onPort.endsWith("`ssh-keygen -f '/tmp/my hosts' -R '[10.0.0.5]:2222'`, then `remux hosts check web1 --accept-new`"), onPort);
    assert.match(hostKeyRefusalMessage({ status: 'revoked', line: 7 }, { ...ctx, host: '::1' }), /web1 \(\[::1\]:22\) is REVOKED \(\/root\/\.ssh\/known_hosts line 7\)/);
  });

});

describe('verdicts agree with ssh connecting to a real sshd', () => {
  const fleets: Fleet[] = [];
  before(async () => {
    fleets.push(...(await Promise.all([startFleet({ count: 1, maxStartups: '100' }), startFleet({ count: 1, mode: 'loopback', maxStartups: '100' })])));
  });
  after(() => Promise.all(fleets.map((f) => f.stop())));

  /** What ssh decides with this known_hosts text, as a HostKeyCheck status. */
  async function sshVerdict(h: FleetHost, text: string): Promise<string> {
    const file = join(dir, `kh-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, text);
    const args = [
      '-F', '/dev/null', '-i', h.identityFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${file}`,
      '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=5', '-p', String(h.port), `${h.user}@${h.address}`, 'true',
    ];
    const res = await exec('ssh', args).then(() => ({ stderr: '', ok: true }), (err: { stderr: string }) => ({ stderr: err.stderr, ok: false }));
    if (res.ok) return 'trusted';
    if (/REVOKED HOST KEY/.test(res.stderr)) return 'revoked';
    if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(res.stderr)) return 'changed';
    if (/No \S+ host key is known/.test(res.stderr)) return 'unknown';
    throw new Error(`unexpected ssh failure: ${res.stderr}`);
  }

  test('ssh-keyscan sees the fleet key; every variant gets the same verdict from ssh and checkHostKey', async () => {
    for (const fleet of fleets) {
      const h = fleet.hosts[0] as FleetHost;
      const [field, type, b64] = h.hostKeyLine.split(' ') as [string, string, string];
      const scan = await exec('ssh-keyscan', ['-p', String(h.port), '-t', 'ed25519', h.address]);
      assert.equal(scan.stdout.trim(), h.hostKeyLine);
      const scanHashed = (await exec('ssh-keyscan', ['-H', '-p', String(h.port), '-t', 'ed25519', h.address])).stdout.trim();
      const key = `${type} ${b64}`;
      const wildcard = field.replace(/\d+(\]?)(:\d+)?$/, '*$1$2');
      const variants: Record<string, string> = {
        exact: `${h.hostKeyLine}\n`,
        keyscanHashed: `${scanHashed}\n`,
        ourHashed: `${knownHostsLine(h.address, h.port, type, b64, { hashed: true })}\n`,
        crlf: `# x\r\n${h.hostKeyLine}\r\n`,
        wildcard: `${wildcard} ${key}\n`,
        negated: `*,!${field} ${key}\n`,
        otherKey: `${field} ${pub('ed2')}\n`,
        otherType: `${field} ${pub('rsa')}\n`,
        trustedButRevoked: `${h.hostKeyLine}\n@revoked * ${key}\n`,
        revokedOtherHost: `${h.hostKeyLine}\n@revoked nothere ${key}\n`,
        caOnly: `@cert-authority * ${key}\n`,
        garbageAround: `${field} ssh-ed25519 ${b64.slice(0, -4)}\n@bogus ${h.hostKeyLine}\n${field}\n`,
        bareHost: `${h.address} ${key}\n`,
        bareHostOtherKey: `${h.address} ${pub('ed3')}\n`,
        empty: '',
      };
      for (const [name, text] of Object.entries(variants)) {
        const expected = await sshVerdict(h, text);
        assert.equal(checkHostKey(text, h.address, h.port, type, b64).status, expected, `${fleet.mode} ${name}`);
      }
    }
  });
});
