// One warm SSH host (a fleet sshd): 100 sequential `true` through the connection pool, against OpenSSH
// multiplexing over a ControlMaster socket, measured in the same run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseCommand } from '../src/command/parser.js';
import { ConnectionPool } from '../src/hosts/pool.js';
import type { Host } from '../src/hosts/types.js';
import { evaluate } from '../src/policy/evaluate.js';
import { parsePolicies } from '../src/policy/load.js';
import type { Policy } from '../src/policy/types.js';
import { inventoryEntry, startFleet, type FleetHost } from '../test/fleet/fleet.js';
import type { BenchResult } from './types.js';

const RUNS = 100;
const POLICY = `policies:
  bench:
    capabilities:
      - { operation: execute_binary, resource: "*" }
      - { operation: write_stdout, resource: null }
`;

export async function benchSsh(): Promise<BenchResult> {
  const fleet = await startFleet({ count: 1 });
  const h = fleet.hosts[0] as FleetHost;
  const pool = new ConnectionPool({ knownHostsFile: fleet.knownHostsFile });
  const controlDir = mkdtempSync(join(fleet.dir, 'cm-'));
  const ssh = [
    '-F', '/dev/null', '-i', h.identityFile, '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${fleet.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
    '-o', 'ControlMaster=auto', '-o', `ControlPath=${join(controlDir, '%C')}`, '-o', 'ControlPersist=60',
    '-p', String(h.port), `${h.user}@${h.address}`,
  ];
  try {
    const entry = inventoryEntry(h);
    const host = pool.host(entry);
    const policy = parsePolicies(POLICY, 'bench.yaml').get('bench') as Policy;
    const list = parseCommand('true');

    // Warm both: the pool's connection, and the master connection behind the control socket.
    await execute(host, list);
    await openssh([...ssh, 'true']);

    const poolMs = await perCommand(() => execute(host, list));
    // What a command costs end to end in remux: the remote policy answers (cached `which`) + the run.
    const checkedMs = await perCommand(async () => {
      const cwd = host.defaultCwd(undefined, null);
      const resolver = await (host.resolverFor as NonNullable<Host['resolverFor']>)(policy, list, cwd);
      if (evaluate(policy, list, { cwd, resolver }).effect !== 'allow') throw new Error('bench policy denied `true`');
      await execute(host, list);
    });
    const opensshMs = await perCommand(() => openssh([...ssh, 'true']));
    return {
      name: 'ssh',
      figures: { poolMsPerCmd: poolMs, checkedMsPerCmd: checkedMs, opensshMsPerCmd: opensshMs, poolOverOpenssh: poolMs / opensshMs },
      lines: [
        `${RUNS} sequential \`true\` on one warm host (fleet ${fleet.mode})`,
        `ssh ControlMaster (anchor)      ${opensshMs.toFixed(2)} ms/command`,
        `remux pool, execute only        ${poolMs.toFixed(2)} ms/command  (${(poolMs / opensshMs).toFixed(2)}x ssh; goal <= 5 ms)`,
        `remux pool, policy + execute    ${checkedMs.toFixed(2)} ms/command  (${(checkedMs / opensshMs).toFixed(2)}x ssh)`,
      ],
    };
  } finally {
    await pool.closeAll();
    await openssh([...ssh.slice(0, -1), '-O', 'exit', ssh[ssh.length - 1] as string]).catch(() => undefined);
    await fleet.stop();
    rmSync(controlDir, { recursive: true, force: true });
  }
}

async function perCommand(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < RUNS; i++) await fn();
  return (performance.now() - t0) / RUNS;
}

async function execute(host: Host, list: ReturnType<typeof parseCommand>): Promise<void> {
  const result = await host.execute({
    list,
    cwd: host.defaultCwd(undefined, null),
    timeoutMs: null,
    pipefail: false,
    output: { maxBytes: null, redact: [], redactBlocks: [] },
    sandbox: null,
    onStdout: () => undefined,
    onStderr: () => undefined,
  });
  if (result.exitCode !== 0) throw new Error(`true exited ${result.exitCode} over the pool`);
}

function openssh(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ssh exited ${code}: ${stderr.trim()}`))));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of (await benchSsh()).lines) console.log(line);
}
