// The HTTPS server's certificate: the configured PEM files, or one generated on first start and kept in
// $REMUX_HOME/tls (key mode 0600) so browsers are asked to trust it once, not per start. The generated one
// is signed by a CA made for it alone, whose key is never written (nothing else can ever be signed by it),
// and cert.pem holds both: clients told to trust that file trust the CA. A self-signed server certificate
// alone is refused as a trust anchor by BoringSSL and rustls clients (Claude Code's, Codex's: "unable to
// verify the first certificate"), which is why older remux certificates of that kind are replaced.
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { writeAtomic } from '../../config/atomic-file.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

/** A self-signed certificate is renewed this long before it expires. */
const RENEW_BEFORE_MS = 7 * 24 * 3600_000;
const VALID_DAYS = 825;

function selfSignedFiles(dir: string): TlsFiles {
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

/**
 * The self-signed certificate in `dir`, generated when absent or about to expire. `host` (the listen
 * address) is named in it besides localhost, 127.0.0.1 and ::1.
 */
export async function ensureSelfSigned(dir: string, host: string, log: (line: string) => void): Promise<TlsFiles> {
  const files = selfSignedFiles(dir);
  if (existsSync(files.cert) && existsSync(files.key)) {
    const cert = new X509Certificate(readFileSync(files.cert));
    const validTo = Date.parse(cert.validTo);
    // Not checkIssued(cert): OpenSSL does not count a certificate without keyCertSign as an issuer, itself included.
    const selfSigned = cert.issuer === cert.subject && cert.verify(cert.publicKey);
    if (validTo - Date.now() > RENEW_BEFORE_MS && !selfSigned) return files;
    log(
      selfSigned
        ? `the certificate in ${dir} signs itself, which some clients (Claude Code, Codex) refuse to trust: generating one signed by a CA of its own; clients that trust ${files.cert} take the new one as they start, a browser asks once more, and an agent given a copy of the old one (--ca-file) needs a copy of the new one`
        : `the certificate in ${dir} expires ${new Date(validTo).toISOString()}: generating a new one`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const names = new Set(['localhost', '127.0.0.1', '::1', host]);
  const altNames = [...names].filter((n) => n !== '' && n !== '0.0.0.0' && n !== '::').map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }));
  const key = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate: new Date(Date.now() + VALID_DAYS * 24 * 3600_000) } as const;
  const ca = await generate([{ name: 'commonName', value: `remux local CA ${randomBytes(4).toString('hex')}` }], {
    ...key,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const server = await generate([{ name: 'commonName', value: 'remux' }], {
    ...key,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  writeAtomic(files.key, server.private);
  writeAtomic(files.cert, `${server.cert.trim()}\n${ca.cert.trim()}\n`);
  log(`generated a certificate ${files.cert} (SHA-256 ${new X509Certificate(server.cert).fingerprint256}), signed by a CA made for it alone`);
  return files;
}
