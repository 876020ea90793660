// What the MCP tests share: a REMUX_HOME with policies for them, principals, and SDK clients on the real
// `remux mcp --stdio` (bin/remux) and on a real daemon's /mcp.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { REMUX_BIN, REPO_ROOT, remux } from '../support/cli.js';
import { client as httpsClient, type Client as HttpsClient } from '../support/https.js';
import { caFetch } from './fetch.js';

// ops: what the tests run; its deny rule is the one a refusal must name. tight: a tiny output limit.
export const POLICY = `policies:
  ops:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|true|yes|pwd|printf|seq|printenv|sh|sleep }
      - { operation: execute_binary, resource: rm, effect: deny, reason: nothing is removed through MCP }
      - { operation: execute_binary, resource: uname, effect: ask }
      - { operation: write_stdout, resource: null }
      - { operation: read_file, resource: /tmp/** }
      - { operation: write_file, resource: /tmp/** }
      - { operation: list_directory, resource: /tmp/** }
  tight:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: seq }
      - { operation: write_stdout, resource: { max_bytes: 100 } }
`;

export const CONFIG = `default_policy: ops
daemon:
  rate_limit: { requests_per_second: 1000, burst: 1000 }
`;

/** `extra.config`: more of config.yaml, after CONFIG. */
export function writeHome(home: string, extra: { hosts?: string; config?: string } = {}): void {
  writeFileSync(join(home, 'policies.yaml'), POLICY);
  writeFileSync(join(home, 'config.yaml'), CONFIG + (extra.config ?? ''));
  if (extra.hosts !== undefined) writeFileSync(join(home, 'hosts.yaml'), extra.hosts);
}

/**
 * A daemon on a loopback port for `home` (written by writeHome) with two principals, `boss` (admin) and
 * `local-ops` (localhost only): their tokens, the /mcp URL, the daemon's certificate, and a raw HTTPS client.
 */
export async function startMcpDaemon(h: { home: string; env: Record<string, string> }, extra: { hosts?: string; config?: string } = {}): Promise<{ tokens: { boss: string; local: string }; url: string; ca: string; raw: HttpsClient }> {
  writeHome(h.home, extra);
  const tokens = { boss: await addPrincipal(h.env, 'boss', '--admin'), local: await addPrincipal(h.env, 'local-ops', '--hosts', 'localhost') };
  const started = await remux(['daemon', 'start', '--listen', '127.0.0.1:0'], { env: h.env });
  assert.equal(started.code, 0, started.stderr);
  const url = new URL('mcp', await daemonUrl(h.env)).href;
  const ca = readFileSync(join(h.home, 'tls', 'cert.pem'), 'utf8');
  return { tokens, url, ca, raw: httpsClient(url, ca) };
}

export async function addPrincipal(env: Record<string, string>, ...args: string[]): Promise<string> {
  const r = await remux(['principal', 'add', ...args, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

/** An SDK client on `remux mcp --stdio ARGS` started as a client would (bin/remux); stderr is collected. */
export async function stdioClient(env: Record<string, string>, args: string[] = [], cwd = REPO_ROOT): Promise<{ client: Client; stderr: () => string; pid: number | null }> {
  const transport = new StdioClientTransport({ command: REMUX_BIN, args: ['mcp', '--stdio', ...args], env, cwd, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'remux-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, stderr: () => stderr, pid: transport.pid };
}

export async function httpClient(url: string, ca: string, token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: caFetch(ca), requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'remux-http-test', version: '2.0.0' });
  await client.connect(transport);
  return client;
}

export interface RunResult {
  host: string;
  outcome: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  rule: string | null;
  message: string | null;
  actionId: number | null;
}

export async function call(client: Client, name: string, args: Record<string, unknown>): Promise<{ result: CallToolResult; text: string; data: RunResult }> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  return { result, text, data: result.structuredContent as unknown as RunResult };
}

export async function daemonUrl(env: Record<string, string>): Promise<string> {
  const status = JSON.parse((await remux(['daemon', 'status', '--json'], { env })).stdout) as { http: { url?: string; off?: string } };
  assert.ok(status.http.url, `the daemon serves HTTP: ${status.http.off}`);
  return status.http.url;
}

/**
 * A 5 s command called with progress asked for and a request timeout of 2.5 s that progress resets (as
 * the SDK's resetTimeoutOnProgress does): it completes only if progress keeps coming.
 */
export async function longCall(client: Client): Promise<{ result: CallToolResult; progress: string[]; ms: number }> {
  const progress: string[] = [];
  const started = Date.now();
  const result = (await client.callTool({ name: 'run_command', arguments: { host: 'localhost', command: 'echo compiling && sleep 5' } }, undefined, {
    onprogress: (p) => progress.push(p.message ?? ''),
    timeout: 2500,
    resetTimeoutOnProgress: true,
  })) as CallToolResult;
  return { result, progress, ms: Date.now() - started };
}

/** What longCall's progress says: after 1, 2 and 4 s, how long, how much output and its last line. */
export function assertLongCallProgress(got: { result: CallToolResult; progress: string[]; ms: number }): void {
  assert.equal(got.result.isError, undefined, JSON.stringify(got.result));
  assert.equal((got.result.structuredContent as { stdout: string }).stdout, 'compiling\n');
  assert.ok(got.ms >= 5000, `it ran its 5 s: ${got.ms} ms`);
  assert.deepEqual(
    got.progress.map((m) => m.replace(/\d+ s/, 'N s')),
    Array<string>(3).fill('running for N s on localhost: 10 bytes of output, last line: compiling'),
  );
  assert.deepEqual(got.progress.map((m) => Number(/for (\d+) s/.exec(m)?.[1])), [1, 2, 4]);
}
