// `remux agent` (this machine dials the gateway) and `remux agent token` (the gateway makes a host for it).
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageVersion } from '../cli/program.js';
import { printJson } from '../cli/output.js';
import { loadConfig } from '../config/config.js';
import { expandHome, socketFile, tlsDir } from '../config/paths.js';
import { hashToken, newToken } from '../config/principals.js';
import { createContext } from '../core/context.js';
import { AuthError, UsageError } from '../core/errors.js';
import { addHost, hostNameProblem, hostsFile, loadInventory, parseLabels } from '../hosts/inventory.js';
import { askDaemon } from '../gateway/client.js';
import { clientSocket } from '../config/daemon-record.js';
import { isLoopback, parseListen } from '../gateway/http/listen.js';
import { relayUrl, runAgent } from './run.js';

/** Reads the token file: owner-only (like ssh's keys), one non-empty line. */
export function readTokenFile(file: string): string {
  const path = expandHome(file);
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if ((mode & 0o077) !== 0) throw new UsageError(`--token-file ${file}: readable by others (mode ${(mode & 0o777).toString(8)})`, `chmod 600 ${file}`);
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new UsageError(`--token-file ${file}: expected the token alone on one line`);
  return token;
}

/** --ca-file: PEM certificates (the gateway's own), checked to be certificates before anything dials. */
export function readCaFile(file: string): { pem: string; file: string } {
  const path = expandHome(file);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--ca-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new UsageError(`--ca-file ${file}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----, as the gateway's $REMUX_HOME/tls/cert.pem)`);
  }
  return { pem, file };
}

export async function agentCommand(opts: { gateway?: string; name?: string; tokenFile?: string; caFile?: string }): Promise<void> {
  const missing = (['gateway', 'name', 'tokenFile'] as const).filter((k) => opts[k] === undefined).map((k) => (k === 'tokenFile' ? '--token-file' : `--${k}`));
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(', ')}`, 'remux agent --gateway wss://gw.example.com:7777 --name laptop --token-file ~/.config/remux/agent.token');
  const name = opts.name!;
  const problem = hostNameProblem(name);
  if (problem) throw new UsageError(`--name ${name}: ${problem}`);
  relayUrl(opts.gateway!); // a bad URL is a usage error before anything else
  const token = readTokenFile(opts.tokenFile!);
  const ca = opts.caFile === undefined ? undefined : readCaFile(opts.caFile);
  const ctx = createContext();
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const log = (line: string): void => void process.stderr.write(`${new Date().toISOString()} remux agent ${name}: ${line}\n`);
  log(`policy ${ctx.defaultPolicy} of ${ctx.policiesFile}, audit ${ctx.auditFile}`);
  try {
    const end = await runAgent({ gateway: opts.gateway!, name, token, ctx, version: packageVersion(), log, signal: stop.signal, ...(ca ? { ca } : {}) });
    if (end.hint !== undefined) throw new UsageError(end.message, end.hint);
    if (end.exitCode === 77) throw new AuthError(end.message, `the token in ${opts.tokenFile} must be the one remux agent token ${name} printed on the gateway`);
    if (end.exitCode !== 0) throw new Error(end.message);
    log('stopped');
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await ctx.close();
  }
}

/** Where the console (and /agent/connect) listens: the running daemon's address, else config.yaml's http.listen. */
async function consoleListen(listen: string, daemonSocket: string | undefined): Promise<{ host: string; port: number }> {
  const status = await askDaemon(clientSocket(socketFile(process.env, daemonSocket), process.env), { type: 'status' }).catch(() => null);
  if (status?.type === 'status' && 'url' in status.status.http) {
    const url = new URL(status.status.http.url);
    return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
  }
  return parseListen(listen);
}

export async function agentTokenCommand(name: string, opts: { label?: string[]; rotate?: boolean; json?: boolean }): Promise<void> {
  const file = hostsFile();
  const existing = loadInventory(file).hosts.find((h) => h.name === name);
  if (existing && !opts.rotate) throw new UsageError(`host ${name} already exists in ${file}`, existing.transport === 'agent' ? `remux agent token ${name} --rotate gives it a new token` : 'pick another name');
  if (!existing && opts.rotate) throw new UsageError(`no agent host ${name} in ${file} to rotate`);
  if (existing && existing.transport !== 'agent') throw new UsageError(`host ${name} in ${file} is not an agent host (transport ${existing.transport})`);
  const token = newToken();
  try {
    const labels = opts.label ? parseLabels(opts.label) : existing?.labels;
    addHost(file, { name, transport: 'agent', tokenSha256: hashToken(token), ...(labels ? { labels } : {}), ...(existing?.tmuxUsers ? { tmuxUsers: existing.tmuxUsers } : {}), ...(existing?.tmuxSocket ? { tmuxSocket: existing.tmuxSocket.kind === 'name' ? existing.tmuxSocket.name : existing.tmuxSocket.path } : {}) }, { replace: opts.rotate === true });
  } catch (err) {
    if ((err as Error).name === 'InventoryError') throw new UsageError((err as Error).message);
    throw err;
  }
  if (opts.json) return printJson({ name, token });
  process.stdout.write(`${opts.rotate ? 'new token for' : 'added'} agent host ${name} in ${file} (only the token's SHA-256 is kept)\n`);
  process.stdout.write(`token (shown once): ${token}\n`);
  const { config } = loadConfig();
  const cert = config.http.tls_cert === undefined ? join(tlsDir(), 'cert.pem') : null;
  const listen = await consoleListen(config.http.listen, config.daemon.socket);
  process.stdout.write(`on ${name}: save it in a file with mode 600, then run: remux agent --gateway wss://THIS-GATEWAY:${listen.port} --name ${name} --token-file FILE${cert ? ' --ca-file CERT' : ''}\n`);
  // The daemon's own certificate (and the CA that signed it): the agent trusts it by having it.
  if (cert) process.stdout.write(`CERT: a copy of this gateway's certificate file, ${cert} (public; made when the daemon first starts)\n`);
  // The default listen address is this machine's alone: an agent elsewhere would be refused its connection, retrying for ever.
  if (isLoopback(listen.host)) {
    process.stderr.write(
      `note: the console listens on ${listen.host}, which only this machine reaches: for an agent on another machine, listen on an address it reaches (http.listen in config.yaml, or remux daemon start --listen 0.0.0.0:${listen.port})\n`,
    );
  }
}
