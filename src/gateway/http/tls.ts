// The HTTPS server's certificate: the configured PEM files, or a self-signed one generated on first
// start and kept in $REMUX_HOME/tls (key mode 0600) so browsers are asked to trust it once, not per start.
import { X509Certificate } from 'node:crypto';
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
    const validTo = Date.parse(new X509Certificate(readFileSync(files.cert)).validTo);
    if (validTo - Date.now() > RENEW_BEFORE_MS) return files;
    log(`the self-signed certificate in ${dir} expires ${new Date(validTo).toISOString()}: generating a new one`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const names = new Set(['localhost', '127.0.0.1', '::1', host]);
  const altNames = [...names].filter((n) => n !== '' && n !== '0.0.0.0' && n !== '::').map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }));
  const notAfterDate = new Date(Date.now() + VALID_DAYS * 24 * 3600_000);
  const pems = await generate([{ name: 'commonName', value: 'remux' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  writeAtomic(files.key, pems.private);
  writeAtomic(files.cert, pems.cert);
  log(`generated a self-signed certificate ${files.cert} (SHA-256 ${new X509Certificate(pems.cert).fingerprint256})`);
  return files;
}
