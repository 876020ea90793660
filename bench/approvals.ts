// Approvals: from a policy `ask` to the push request leaving remux, and from the approve POST (ntfy's
// HTTP action, with the link's token) to the command starting. Through a real daemon over HTTPS
// (POST /api/run streaming), with a local HTTP server standing in for the push service. Anchor in the
// same run: the same command with no ask, request to its output.
import { createServer, type Server } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { percentile, run } from './measure.js';
import type { BenchResult } from './types.js';

const REMUX_BIN = fileURLToPath(new URL('../../bin/remux', import.meta.url));
const ROUNDS = 40;

const POLICY = `policies:
  ops:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo|printf }
      - { operation: write_stdout, resource: null }
      - { operation: execute_binary, effect: ask, resource: printf, reason: needs a person }
`;

interface Push {
  at: number;
  answerUrl: string;
  body: string;
}

/** The push service stand-in: hands each ntfy publish to whoever waits for it. */
function pushService(): { server: Server; next(): Promise<Push> } {
  const waiting: Array<(p: Push) => void> = [];
  const server = createServer((req, res) => {
    const at = performance.now();
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.end('{}');
      const action = (JSON.parse(body) as { actions: Array<{ action: string; label: string; url: string; body: string }> }).actions.find((a) => a.label === 'Approve')!;
      waiting.shift()?.({ at, answerUrl: action.url, body: action.body });
    });
  });
  return { server, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

/** POST /api/run; resolves when the first output line arrives (and the stream is drained). */
function runUntilOutput(base: URL, ca: string, token: string, command: string): { sent: number; output: Promise<number> } {
  const sent = performance.now();
  const output = new Promise<number>((resolve, reject) => {
    const req = https.request(
      { host: base.hostname, port: base.port, path: '/api/run', method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
      (res) => {
        let seen = false;
        res.setEncoding('utf8').on('data', (chunk: string) => {
          if (!seen && chunk.includes('"type":"output"')) {
            seen = true;
            resolve(performance.now());
          }
        });
        res.on('end', () => (seen ? undefined : reject(new Error(`no output from ${command} (HTTP ${res.statusCode})`))));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ selector: 'localhost', command }));
  });
  return { sent, output };
}

function post(url: string, ca: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume().on('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`answer: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function benchApprovals(): Promise<BenchResult> {
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-approvals-'));
  const env = { ...process.env, REMUX_HOME: home };
  const push = pushService();
  await new Promise<void>((resolve) => push.server.listen(0, '127.0.0.1', resolve));
  const pushUrl = `http://127.0.0.1:${(push.server.address() as AddressInfo).port}/`;
  try {
    writeFileSync(join(home, 'policies.yaml'), POLICY);
    writeFileSync(join(home, 'config.yaml'), `default_policy: ops\nnotify:\n  channels:\n    - { type: ntfy, url: "${pushUrl}", topic: bench, allow_internal: true }\n`);
    const added = await run([REMUX_BIN, 'principal', 'add', 'bot', '--admin', '--json'], env);
    const token = (JSON.parse(added.stdout) as { token: string }).token;
    const started = await run([REMUX_BIN, 'daemon', 'start', '--listen', '127.0.0.1:0'], env);
    const base = new URL(/web console and API: (\S+)/.exec(started.stdout)![1]!);
    const ca = readFileSync(join(home, 'tls', 'cert.pem'), 'utf8');

    const plain: number[] = [];
    const askToPush: number[] = [];
    const answerToStart: number[] = [];
    for (let i = 0; i < ROUNDS + 3; i++) {
      const direct = runUntilOutput(base, ca, token, 'echo direct');
      const directMs = (await direct.output) - direct.sent;
      const pushed = push.next();
      const asked = runUntilOutput(base, ca, token, 'printf asked\\n');
      const p = await pushed;
      const answered = performance.now();
      await post(p.answerUrl, ca, p.body);
      const startedAt = await asked.output;
      if (i < 3) continue; // warm-up
      plain.push(directMs);
      askToPush.push(p.at - asked.sent);
      answerToStart.push(startedAt - answered);
    }
    const ms = (v: number): string => `${v.toFixed(1)} ms`;
    const figures = {
      askToPushP50Ms: percentile(askToPush, 50),
      askToPushP95Ms: percentile(askToPush, 95),
      answerToStartP50Ms: percentile(answerToStart, 50),
      answerToStartP95Ms: percentile(answerToStart, 95),
      plainRunP50Ms: percentile(plain, 50),
    };
    return {
      name: `approvals: ask -> push -> answer -> run (${ROUNDS} rounds, POST /api/run over HTTPS, ntfy stand-in on loopback)`,
      figures,
      lines: [
        `policy ask to the push request arriving: p50 ${ms(figures.askToPushP50Ms)}, p95 ${ms(figures.askToPushP95Ms)} (target p50 ≤ 50 ms; includes the request and the policy check)`,
        `approve POST to the command's first output: p50 ${ms(figures.answerToStartP50Ms)}, p95 ${ms(figures.answerToStartP95Ms)} (target p50 ≤ 50 ms)`,
        `anchor: the same request with no ask, request to first output: p50 ${ms(figures.plainRunP50Ms)}`,
      ],
    };
  } finally {
    await run([REMUX_BIN, 'daemon', 'stop'], env);
    push.server.close();
    rmSync(home, { recursive: true, force: true });
  }
}
