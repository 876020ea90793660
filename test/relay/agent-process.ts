// A gateway daemon and `remux agent` processes as a user runs them: `remux agent token` on the gateway,
// the daemon serving HTTPS with its self-signed certificate, and an agent with a REMUX_HOME (and tmux
// directory) of its own dialing it as host `laptop`.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { remux, spawnRemux, tempHome } from '../support/cli.js';

export interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export interface HostRow {
  transport: string;
  connected: boolean;
  address: string | null;
  since: string | null;
  lastError: string | null;
}

export async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) if (await ok()) return;
  throw new Error(`timed out waiting for ${what}`);
}

export class AgentDaemon {
  readonly gw = tempHome();
  readonly ag = tempHome();
  /** The agent's login HOME, where sessions start: beside its REMUX_HOME, as ~ is beside ~/.config/remux (remux's own files are no principal's). */
  readonly login = tempHome();
  readonly tokenFile = join(this.ag.home, 'agent.token');
  url = '';
  token = '';

  /** The agent's environment: its REMUX_HOME, its login HOME, its own tmux directory. */
  agentEnv(): Record<string, string> {
    return { ...this.ag.env, HOME: this.login.home, TMUX_TMPDIR: join(this.ag.home, 'tmux') };
  }

  /** The daemon's self-signed certificate, which the agent trusts with --ca-file, as `agent token` says. */
  get caFile(): string {
    return join(this.gw.home, 'tls', 'cert.pem');
  }

  /** Writes both sides' files, makes the agent host and its token, starts the daemon. */
  /** `pongTimeoutSeconds` (pings every second), or 'defaults': the daemon's own ping settings. */
  async setUp(files: { gatewayPolicies: string; agentPolicies: string; gatewayConfig?: string; labels?: string[]; pongTimeoutSeconds?: number | 'defaults' }): Promise<void> {
    writeFileSync(join(this.gw.home, 'policies.yaml'), files.gatewayPolicies);
    writeFileSync(join(this.ag.home, 'policies.yaml'), files.agentPolicies);
    mkdirSync(join(this.ag.home, 'tmux'));
    const relay = files.pongTimeoutSeconds === 'defaults' ? '' : `relay:\n  ping_interval_seconds: 1\n  pong_timeout_seconds: ${files.pongTimeoutSeconds ?? 2}\n`;
    writeFileSync(join(this.gw.home, 'config.yaml'), `${relay}${files.gatewayConfig ?? ''}`);
    assert.equal((await remux(['principal', 'add', 'admin', '--admin'], { env: this.gw.env })).code, 0);
    const made = await remux(['agent', 'token', 'laptop', ...(files.labels ?? []).flatMap((l) => ['--label', l]), '--json'], { env: this.gw.env });
    assert.equal(made.code, 0, made.stderr);
    this.token = (JSON.parse(made.stdout) as { token: string }).token;
    writeFileSync(this.tokenFile, `${this.token}\n`, { mode: 0o600 });
    await this.startDaemon('127.0.0.1:0');
  }

  async startDaemon(listen: string): Promise<void> {
    const started = await remux(['daemon', 'start', '--listen', listen], { env: this.gw.env });
    assert.equal(started.code, 0, started.stderr);
    this.url = /web console and API: (\S+)/.exec(started.stdout)![1]!.replace('https://', 'wss://').replace(/\/$/, '');
  }

  startAgent(file = this.tokenFile): AgentProcess {
    const child = spawnRemux(['agent', '--gateway', this.url, '--name', 'laptop', '--token-file', file, '--ca-file', this.caFile], { env: this.agentEnv() });
    let output = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => output, exited };
  }

  /** Starts an agent and waits until the gateway lists it as connected. */
  async connectAgent(): Promise<AgentProcess> {
    const agent = this.startAgent();
    await waitFor('the agent to connect', async () => (await this.hostRow()).connected);
    return agent;
  }

  async hostRow(): Promise<HostRow> {
    const r = await remux(['hosts', 'list', '--json'], { env: this.gw.env });
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Array<HostRow & { name: string }>).find((h) => h.name === 'laptop')!;
  }

  async tearDown(agent: AgentProcess | undefined): Promise<void> {
    agent?.child.kill('SIGKILL');
    await remux(['daemon', 'stop'], { env: this.gw.env });
    this.gw.remove();
    this.ag.remove();
    this.login.remove();
  }
}
