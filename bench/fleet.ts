// Fleet benchmark (issue 3): a fleet of real sshd hosts started here, remux measured side by side with
// the anchors in the same run: OpenSSH (cold and over ControlMaster), parallel-ssh, and Ansible,
// Fabric and Mitogen where they are installed (scripts/bench.sh installs them with apt-get when root).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startFleet, type Fleet, type FleetHost } from '../test/fleet/fleet.js';
import { run, type Timed } from './measure.js';
import type { BenchResult } from './types.js';

/** The `remux` command as installed: the native launcher (forwards to the daemon, else runs the Node CLI). */
const REMUX_BIN = fileURLToPath(new URL('../../bin/remux', import.meta.url));
const REMUX_NODE_BIN = fileURLToPath(new URL('../../bin/remux.js', import.meta.url));
const DEBIAN_PYTHON = '/usr/bin/python3';

async function median(times: number, fn: () => Promise<Timed>, what: string): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const r = await fn();
    if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.slice(0, 500)}`);
    samples.push(r.ms);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

function sshArgs(fleet: Fleet, host: FleetHost, extra: string[] = []): string[] {
  return [
    'ssh', '-T', '-i', host.identityFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${fleet.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
    '-p', String(host.port), ...extra, `${host.user}@${host.address}`,
  ];
}

/** Wall time of one command per host, all started at once (what a fan-out tool does). */
async function parallel(fleet: Fleet, argvFor: (h: FleetHost) => string[]): Promise<Timed> {
  const t0 = performance.now();
  const all = await Promise.all(fleet.hosts.map((h) => run(argvFor(h))));
  const bad = all.find((r) => r.code !== 0);
  return { ms: performance.now() - t0, code: bad?.code ?? 0, stdout: '', stderr: bad?.stderr ?? '' };
}

interface Setup {
  fleet: Fleet;
  home: string;
  env: NodeJS.ProcessEnv;
}

async function setup(count: number): Promise<Setup> {
  const fleet = await startFleet({ count, maxStartups: '200:30:400', maxSessions: 20 });
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-'));
  const env: NodeJS.ProcessEnv = {};
  // Only this benchmark's remux variables: none leaks in from the caller's shell.
  for (const [name, value] of Object.entries(process.env)) if (!/^(REMUX|RPIPE)_/.test(name)) env[name] = value;
  Object.assign(env, { REMUX_HOME: home, REMUX_KNOWN_HOSTS: fleet.knownHostsFile });
  writeFileSync(
    join(home, 'config.yaml'),
    'default_policy: bench\nfanout: { concurrency: 128 }\ndaemon: { rate_limit: { requests_per_second: 100000, burst: 100000 } }\n',
  );
  // Unsandboxed, like the anchors (ssh, parallel-ssh, Ansible, …) it is compared with.
  writeFileSync(
    join(home, 'policies.yaml'),
    'policies:\n  bench:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: uptime|true }\n      - { operation: write_stdout, resource: null }\n',
  );
  const hosts = fleet.hosts
    .map((h) => `  ${h.name}:\n    address: ${h.address}\n    port: ${h.port}\n    user: ${h.user}\n    identity: ${h.identityFile}\n`)
    .join('');
  writeFileSync(join(home, 'hosts.yaml'), `hosts:\n${hosts}`);
  return { fleet, home, env };
}

async function teardown(s: Setup): Promise<void> {
  await run([REMUX_BIN, 'daemon', 'stop'], s.env);
  await s.fleet.stop();
  rmSync(s.home, { recursive: true, force: true });
}

const remux = (s: Setup, args: string[]): Promise<Timed> => run([REMUX_BIN, ...args], s.env);
const remuxNode = (s: Setup, args: string[]): Promise<Timed> => run([process.execPath, REMUX_NODE_BIN, ...args], s.env);

const FABRIC = `
import sys
from fabric import ThreadingGroup
hosts = sys.argv[1].split(',')
g = ThreadingGroup(*hosts, connect_kwargs={'key_filename': sys.argv[2]})
g.run('uptime', hide=True)
`;

/**
 * The cold fan-out and the tools its goals name (parallel-ssh, Fabric), run in turns (A B C A B C …)
 * so that a change in the machine's load hits them alike; median of each.
 */
async function coldContenders(s: Setup, lines: string[], figures: Record<string, number>, rounds: number): Promise<void> {
  const { fleet } = s;
  const first = fleet.hosts[0]!;
  const contenders: Record<string, () => Promise<Timed>> = {
    remuxColdMs: () => remux(s, ['client', 'run', 'all', '--no-daemon', '--', 'uptime']),
  };
  const hostsFile = join(s.home, 'pssh-hosts');
  writeFileSync(hostsFile, fleet.hosts.map((h) => `${h.user}@${h.address}:${h.port}`).join('\n'));
  if (existsSync('/usr/bin/parallel-ssh')) {
    const x = `-i ${first.identityFile} -o IdentitiesOnly=yes -o UserKnownHostsFile=${fleet.knownHostsFile} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
    contenders.psshMs = () => run(['parallel-ssh', '-h', hostsFile, '-p', '200', '-x', x, 'uptime']);
  } else lines.push('parallel-ssh: not installed (apt-get install pssh)');
  if (await pythonHas('fabric')) {
    const spec = fleet.hosts.map((h) => `${h.user}@${h.address}:${h.port}`).join(',');
    contenders.fabricMs = () => run([DEBIAN_PYTHON, '-c', FABRIC, spec, first.identityFile]);
  } else lines.push('fabric: not installed (apt-get install python3-fabric)');

  const samples = new Map<string, number[]>(Object.keys(contenders).map((k) => [k, []]));
  // Round -1 warms up: page cache, Python's and our compiled-code caches, sshd's first fork.
  for (let round = -1; round < rounds; round++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const r = await fn();
      if (r.code !== 0) throw new Error(`${name} failed (exit ${r.code}): ${r.stderr.slice(0, 500)}`);
      if (round >= 0) samples.get(name)!.push(r.ms);
    }
  }
  for (const [name, values] of samples) figures[name] = values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

async function anchors(s: Setup, lines: string[], figures: Record<string, number>): Promise<void> {
  const { fleet } = s;
  figures.sshColdMs = await median(3, () => parallel(fleet, (h) => [...sshArgs(fleet, h), 'uptime']), 'ssh cold');

  const cm = mkdtempSync('/tmp/rmxcm-');
  const cmOpts = ['-o', 'ControlMaster=auto', '-o', `ControlPath=${cm}/%C`, '-o', 'ControlPersist=120'];
  await parallel(fleet, (h) => [...sshArgs(fleet, h, cmOpts), 'true']);
  figures.sshControlMasterMs = await median(5, () => parallel(fleet, (h) => [...sshArgs(fleet, h, cmOpts), 'uptime']), 'ssh ControlMaster');
  const first = fleet.hosts[0]!;
  const seq = async (): Promise<Timed> => {
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      const r = await run([...sshArgs(fleet, first, cmOpts), 'true']);
      if (r.code !== 0) return r;
    }
    return { ms: performance.now() - t0, code: 0, stdout: '', stderr: '' };
  };
  figures.sshControlMasterTrueMs = (await median(1, seq, 'ssh ControlMaster sequential')) / 100;
  await parallel(fleet, (h) => [...sshArgs(fleet, h, cmOpts), '-O', 'exit']).catch(() => undefined);
  rmSync(cm, { recursive: true, force: true });

  if (existsSync('/usr/bin/ansible')) {
    const inv = join(s.home, 'ansible-inventory');
    writeFileSync(inv, fleet.hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port} ansible_user=${h.user}`).join('\n'));
    const env = {
      ...process.env,
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${fleet.knownHostsFile} -o IdentitiesOnly=yes -o ControlMaster=no`,
      ANSIBLE_PRIVATE_KEY_FILE: first.identityFile,
      ANSIBLE_FORKS: '50',
      ANSIBLE_PYTHON_INTERPRETER: DEBIAN_PYTHON,
      ANSIBLE_LOCAL_TEMP: join(s.home, 'ansible-tmp'),
    };
    figures.ansibleMs = await median(1, () => run(['ansible', 'all', '-i', inv, '-m', 'command', '-a', 'uptime'], env), 'ansible');
  } else lines.push('ansible: not installed (apt-get install ansible-core)');

  const mitogen = `
import sys, mitogen.master, mitogen.utils, subprocess
def up(): return subprocess.check_output(['uptime'])
def main(router):
    ctxs = []
    for spec in sys.argv[1].split(','):
        user, rest = spec.split('@'); addr, port = rest.rsplit(':', 1)
        ctxs.append(router.ssh(hostname=addr, username=user, port=int(port), identity_file=sys.argv[2],
            ssh_args=['-o', 'UserKnownHostsFile=' + sys.argv[3], '-o', 'StrictHostKeyChecking=yes'], python_path='${DEBIAN_PYTHON}'))
    recvs = [c.call_async(up) for c in ctxs]
    for r in recvs: r.get()
mitogen.utils.run_with_router(main)
`;
  if (await pythonHas('mitogen')) {
    const spec = fleet.hosts.map((h) => `${h.user}@${h.address}:${h.port}`).join(',');
    figures.mitogenMs = await median(3, () => run([DEBIAN_PYTHON, '-c', mitogen, spec, first.identityFile, fleet.knownHostsFile]), 'mitogen').catch((err: Error) => {
      lines.push(`mitogen: failed: ${err.message.slice(0, 200)}`);
      return NaN;
    });
  } else lines.push('mitogen: not installed (apt-get install python3-mitogen)');
}

async function pythonHas(module: string): Promise<boolean> {
  if (!existsSync(DEBIAN_PYTHON)) return false;
  return (await run([DEBIAN_PYTHON, '-c', `import ${module}`])).code === 0;
}

export async function benchFleet(count = 20): Promise<BenchResult> {
  const figures: Record<string, number> = {};
  const lines: string[] = [];
  const s = await setup(count);
  try {
    // Cold: a whole CLI process, no daemon, new connections to every host.
    await coldContenders(s, lines, figures, 7);
    await anchors(s, lines, figures);

    const started = await remux(s, ['daemon', 'start']);
    if (started.code !== 0) throw new Error(`daemon start failed: ${started.stderr}`);
    await remux(s, ['client', 'run', 'all', '--', 'true']);
    figures.remuxWarmMs = await median(9, () => remux(s, ['client', 'run', 'all', '--', 'uptime']), 'remux warm');
    figures.remuxWarmNodeMs = await median(9, () => remuxNode(s, ['client', 'run', 'all', '--', 'uptime']), 'remux warm, Node CLI');

    // Per command: the difference between a 100-line and a 1-line batch, so process start-up cancels out.
    const batch100 = join(s.home, 'true100.txt');
    const batch1 = join(s.home, 'true1.txt');
    writeFileSync(batch100, 'true\n'.repeat(100));
    writeFileSync(batch1, 'true\n');
    const one = s.fleet.hosts[0]!.name;
    const oneMs = await median(5, () => remux(s, ['client', 'batch', one, '-f', batch1, '--json']), 'remux batch of 1');
    const hundredMs = await median(3, () => remux(s, ['client', 'batch', one, '-f', batch100, '--json']), 'remux batch of 100');
    figures.remuxBatchTrueMs = (hundredMs - oneMs) / 99;
    const status = JSON.parse((await remux(s, ['daemon', 'status', '--json'])).stdout) as { memoryRssBytes: number };
    figures[`daemonRss${count}HostsMb`] = status.memoryRssBytes / 2 ** 20;
  } finally {
    await teardown(s);
  }

  const f = figures;
  const ratio = (a: number | undefined, b: number | undefined): string => (a && b ? `${(a / b).toFixed(2)}x` : 'n/a');
  const ms = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? 'n/a' : `${v.toFixed(1)} ms`);
  lines.unshift(
    `fleet: ${count} sshd hosts (${s.fleet.mode}); uptime on all hosts, whole process, median`,
    `remux cold (no daemon)            ${ms(f.remuxColdMs)}   ${ratio(f.remuxColdMs, f.psshMs)} parallel-ssh (goal <= 0.7x), ${ratio(f.remuxColdMs, f.fabricMs)} Fabric (goal < 1x)`,
    `remux warm (daemon)               ${ms(f.remuxWarmMs)}   ${ratio(f.remuxWarmMs, f.sshControlMasterMs)} ssh ControlMaster (goal <= 1x), ${ratio(f.remuxWarmMs, f.psshMs)} parallel-ssh`,
    `  the same from the Node CLI      ${ms(f.remuxWarmNodeMs)}   (node bin/remux.js, without the native launcher)`,
    `ssh cold, 20 in parallel          ${ms(f.sshColdMs)}`,
    `ssh over ControlMaster            ${ms(f.sshControlMasterMs)}`,
    `parallel-ssh                      ${ms(f.psshMs)}`,
    `ansible (command module)          ${ms(f.ansibleMs)}`,
    `fabric ThreadingGroup             ${ms(f.fabricMs)}`,
    `mitogen (call_async)              ${ms(f.mitogenMs)}`,
    `sequential true x100 on one warm host: remux batch via daemon ${ms(f.remuxBatchTrueMs)}/cmd (goal <= 5 ms), ssh ControlMaster ${ms(f.sshControlMasterTrueMs)}/cmd (${ratio(f.remuxBatchTrueMs, f.sshControlMasterTrueMs)})`,
    `daemon RSS with ${count} hosts connected: ${(f[`daemonRss${count}HostsMb`] ?? NaN).toFixed(0)} MB`,
  );
  return { name: 'fleet', figures, lines };
}

/** Daemon memory with many hosts connected (goal: <= 150 MB RSS with 100). */
export async function benchDaemonMemory(count = 100): Promise<BenchResult> {
  const s = await setup(count);
  try {
    const started = await remux(s, ['daemon', 'start']);
    if (started.code !== 0) throw new Error(`daemon start failed: ${started.stderr}`);
    const r = await remux(s, ['client', 'run', 'all', '--', 'true']);
    if (r.code !== 0) throw new Error(`fan-out to ${count} hosts failed: ${r.stderr.slice(-500)}`);
    const status = JSON.parse((await remux(s, ['daemon', 'status', '--json'])).stdout) as { memoryRssBytes: number; hosts: Array<{ connected: boolean }> };
    const connected = status.hosts.filter((h) => h.connected).length;
    const mb = status.memoryRssBytes / 2 ** 20;
    return { name: 'daemon-memory', figures: { hosts: count, connected, rssMb: mb }, lines: [`daemon RSS with ${connected}/${count} hosts connected: ${mb.toFixed(0)} MB (goal <= 150 MB)`] };
  } finally {
    await teardown(s);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of (await benchFleet()).lines) console.log(line);
  for (const line of (await benchDaemonMemory()).lines) console.log(line);
}
