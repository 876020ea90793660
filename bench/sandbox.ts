// Sandbox benchmark (issue 7): what the OS sandbox adds to a command, measured through what a user runs
// (the installed `remux`, a daemon on its default configuration, `client batch --json`, whose per-command
// durationMs spans check, audit and run), on this host and on an SSH host of a test fleet, beside the
// anchor: plain bubblewrap started per command with the same options, against the same program
// unsandboxed, in the same run (on the SSH host through OpenSSH over one ControlMaster connection).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { bwrapAvailable, bwrapOptions, sandboxLayout } from '../src/exec/sandbox.js';
import { startFleet } from '../test/fleet/fleet.js';
import { run } from './measure.js';
import type { BenchResult } from './types.js';

const REMUX_BIN = fileURLToPath(new URL('../../bin/remux', import.meta.url));
/**
 * The command measured: a program that does nothing, named as users name programs. Not `true`: an SSH
 * host's login shell runs that as a builtin, with no exec at all, while every sandboxed command execs
 * its program; not `/usr/bin/true`: a path on the command line costs the policy check a lookup on the
 * host each time (paths are never cached), which would drown the difference measured.
 */
const NOOP = ['sleep', '0'];
const ROUNDS = 8;
const PER_ROUND = 100;

const POLICIES = `policies:
  static_only:
    sandbox: false
    capabilities: &caps
      - { operation: execute_binary, resource: sleep }
      - { operation: read_file, resource: [/var/log/**, /tmp/**] }
      - { operation: write_stdout, resource: null }
  sandboxed:
    capabilities: *caps
`;

/** Wall time of one spawn to exit, as remux itself spawns a stage. */
function spawnMs(argv: string[]): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: {}, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

const sorted = (samples: number[]): number[] => [...samples].sort((a, b) => a - b);
const p50 = (samples: number[]): number => sorted(samples)[Math.floor(samples.length / 2)]!;
/** Mean of the middle half: as robust as the median, finer than durationMs's 0.1 ms steps. */
const middleMean = (samples: number[]): number => {
  const s = sorted(samples).slice(Math.floor(samples.length / 4), Math.ceil((samples.length * 3) / 4));
  return s.reduce((a, b) => a + b, 0) / s.length;
};

/** Where commands run: this host, and an SSH host (prefix of the figure names). */
const TARGETS = [
  { name: 'localhost', prefix: '' },
  { name: 'h1', prefix: 'ssh_' },
] as const;

export async function benchSandbox(): Promise<BenchResult> {
  const bwrap = bwrapAvailable();
  if (!bwrap.ok || bwrap.path === null) return { name: 'sandbox', figures: {}, lines: [`skipped: ${bwrap.reason}`] };
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-sandbox-'));
  const fleet = await startFleet({ count: 1 });
  const host = fleet.hosts[0]!;
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^(REMUX|RPIPE)_/.test(name)) env[name] = value;
  Object.assign(env, { REMUX_HOME: home, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  writeFileSync(join(home, 'policies.yaml'), POLICIES);
  writeFileSync(join(home, 'hosts.yaml'), `hosts:\n  h1:\n    address: ${host.address}\n    port: ${host.port}\n    user: ${host.user}\n    identity: ${host.identityFile}\n`);
  const commands = join(home, 'noop.txt');
  writeFileSync(commands, `${NOOP.join(' ')}\n`.repeat(PER_ROUND));
  const ssh = ['ssh', '-T', '-i', host.identityFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${fleet.knownHostsFile}`,
    '-o', 'ControlMaster=auto', '-o', `ControlPath=${join(home, 'ssh-%C')}`, '-o', 'ControlPersist=60', '-p', String(host.port), `${host.user}@${host.address}`];
  const samples: Record<string, number[]> = {};
  const add = (key: string, values: number[]): number => (samples[key] ??= []).push(...values);
  const start = await run([REMUX_BIN, 'daemon', 'start'], env);
  if (start.code !== 0) throw new Error(`remux daemon start failed: ${start.stderr}`);
  try {
    const bwrapArgv = [bwrap.path, ...bwrapOptions(sandboxLayout({ read: ['/var/log', '/tmp'], write: [], hide: [], readOnly: [], network: false, owner: 'bench' })), '--', '/usr/bin/sleep', '0'];
    // Rounds interleave the variants, so a busy moment of the machine falls on all of them alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of TARGETS) {
        // Alternating which goes first cancels a drift of the machine within a round.
        for (const policy of round % 2 === 0 ? ['static_only', 'sandboxed'] : ['sandboxed', 'static_only']) {
          const t0 = performance.now();
          const r = await run([REMUX_BIN, 'client', 'batch', target.name, '--policy', policy, '--cwd', '/var/log', '--json', '-f', commands], env);
          // As a user sees it: the whole batch (client start included) per command, after the first rounds' start-up.
          if (round >= 2) add(`${target.prefix}${policy}_batch`, [(performance.now() - t0) / PER_ROUND]);
          if (r.code !== 0) throw new Error(`remux client batch ${target.name} --policy ${policy} failed (exit ${r.code}): ${r.stderr.slice(0, 500)}`);
          const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { durationMs: number; exitCode: number });
          // The first commands start the connection and the sandbox: that is start-up, not per-command cost.
          add(`${target.prefix}${policy}`, lines.slice(round < 2 ? 1 : 0).map((l) => l.durationMs));
        }
      }
      for (let i = 0; i < PER_ROUND / 4; i++) {
        add('noop', [await spawnMs(['/usr/bin/sleep', '0'])]);
        add('bwrap', [await spawnMs(bwrapArgv)]);
        add('ssh_noop', [await spawnMs([...ssh, NOOP.join(' ')])]);
        add('ssh_bwrap', [await spawnMs([...ssh, ...bwrapArgv])]);
      }
    }
  } finally {
    await run([REMUX_BIN, 'daemon', 'stop'], env);
    await run(['ssh', '-O', 'exit', ...ssh.slice(1)], env);
    await fleet.stop();
    rmSync(home, { recursive: true, force: true });
  }
  const f = Object.fromEntries(Object.entries(samples).flatMap(([k, v]) => [[`${k}P50Ms`, p50(v)], [`${k}MiddleMeanMs`, middleMean(v)]])) as Record<string, number>;
  const ms = (x: number): string => `${x.toFixed(2)} ms`;
  const lines = [`per command, p50 of durationMs from \`remux client batch --json\` through the daemon (${ROUNDS} x ${PER_ROUND} \`sleep 0\` each):`];
  for (const { name, prefix } of TARGETS) {
    const remuxOverhead = f[`${prefix}sandboxedP50Ms`]! - f[`${prefix}static_onlyP50Ms`]!;
    const middle = f[`${prefix}sandboxedMiddleMeanMs`]! - f[`${prefix}static_onlyMiddleMeanMs`]!;
    const bwrapOverhead = f[`${prefix}bwrapP50Ms`]! - f[`${prefix}noopP50Ms`]!;
    Object.assign(f, { [`${prefix}remuxOverheadMs`]: remuxOverhead, [`${prefix}remuxOverheadMiddleMeanMs`]: middle, [`${prefix}bwrapOverheadMs`]: bwrapOverhead });
    const anchor = prefix === '' ? 'spawned per command' : 'through OpenSSH (ControlMaster), per command';
    lines.push(
      `${name}: static checks only ${ms(f[`${prefix}static_onlyP50Ms`]!)}, sandboxed ${ms(f[`${prefix}sandboxedP50Ms`]!)} (+${ms(remuxOverhead)}; goal <= 1 ms); mean of the middle half +${ms(middle)}`,
      `  the whole \`client batch\` of ${PER_ROUND} per command (its wall time / ${PER_ROUND}, p50 of ${ROUNDS - 2} rounds): static checks only ${ms(f[`${prefix}static_only_batchP50Ms`]!)}, sandboxed ${ms(f[`${prefix}sandboxed_batchP50Ms`]!)}`,
      `  anchor, ${anchor}: \`sleep 0\` ${ms(f[`${prefix}noopP50Ms`]!)}, \`bwrap <remux's options> sleep 0\` ${ms(f[`${prefix}bwrapP50Ms`]!)} (+${ms(bwrapOverhead)}): remux's sandbox costs ${(remuxOverhead / bwrapOverhead).toFixed(2)}x plain bubblewrap's overhead`,
    );
  }
  lines.push(`bubblewrap ${bwrap.version}`);
  return { name: 'sandbox', figures: f, lines };
}
