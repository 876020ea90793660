// `remux code hook` inside a remux agent session: hands the hook's input to the session's endpoint
// (hook-endpoint.ts) and returns its decision. Inside sandbox-runtime the only way out is the session's
// proxy, which routes HOOK_HOST to the endpoint; unsandboxed, the socket is reached directly.
import { readFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:http';
import { HOOK_HOST, HOOK_PATH, SESSION_HEADER, socketOf, tokenFileOf } from './hook-wire.js';

/** The decision JSON to print, or null (print nothing: Claude Code shows its own dialog). */
export async function askHookEndpoint(dir: string, session: string, input: string, env: NodeJS.ProcessEnv = process.env): Promise<object | null> {
  let token: string;
  try {
    token = readFileSync(tokenFileOf(dir), 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the session's hook token in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, [SESSION_HEADER]: session, 'content-type': 'application/json', host: HOOK_HOST };
  const proxy = env.SANDBOX_RUNTIME === '1' ? (env.HTTP_PROXY ?? env.http_proxy) : undefined;
  let target: RequestOptions;
  if (proxy) {
    const p = new URL(proxy);
    if (p.username) headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString('base64')}`;
    target = { host: p.hostname, port: Number(p.port) || 80, path: `http://${HOOK_HOST}${HOOK_PATH}` };
  } else {
    target = { socketPath: socketOf(dir), path: HOOK_PATH };
  }
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ ...target, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', (err) => reject(new Error(`cannot reach the session's hook endpoint${proxy ? ' through the sandbox proxy' : ''}: ${err.message}`)));
    req.end(input);
  });
  let parsed: { output?: object | null; error?: string } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not the endpoint's JSON (a proxy's refusal): reported with the status below
  }
  if (status !== 200) throw new Error(`the session's hook endpoint refused (HTTP ${status}): ${parsed.error ?? body.trim().slice(0, 200)}`);
  return parsed.output ?? null;
}

/** Inside a session: the hook's input (stdin) to the session's endpoint, its decision JSON to stdout (none: Claude Code decides). */
export async function relayHook(dir: string, session: string, stdin: NodeJS.ReadableStream, stdout: NodeJS.WritableStream): Promise<void> {
  const output = await askHookEndpoint(dir, session, await readAll(stdin));
  if (output !== null) stdout.write(`${JSON.stringify(output)}\n`);
}

/** A hook's input: all of stdin, as text. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
