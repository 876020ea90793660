// The web server's listen address (http.listen, --listen): its parts, and whether it is this machine's alone.
import { isIP } from 'node:net';
import { UsageError } from '../../core/errors.js';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** `HOST:PORT` or `[IPv6]:PORT`. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`bad listen address "${text}": write HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:7777`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Another daemon (of another REMUX_HOME), or another program, has the console's address: what to do rather than the errno. */
export function addressInUse({ host, port }: { host: string; port: number }): string {
  return `address in use (EADDRINUSE): something else listens there (another remux daemon, of another REMUX_HOME?); stop it, or start with --listen ${host}:${port + 1} (or set http.listen in config.yaml)`;
}
