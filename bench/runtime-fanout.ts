// The runtime fanned out: one call (`true`, run on each host) to 20 fleet sshd hosts, cold (new SSH
// connections, bootstrap, call) and warm, against Mitogen and Ansible measured in the same run on the
// same hosts. remux runs in this process through the SDK's fanout() with the CLI's context (policy and
// audit included); Mitogen's figures are timed inside its own Python process, Ansible's are whole runs
// of `ansible all -m command -a true` (its process start-up included: that is how it is used).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createContext } from '../src/core/context.js';
import { connect, fanout, type RuntimeHost } from '../src/runtime/index.js';
import { startFleet, type Fleet } from '../test/fleet/fleet.js';
import { percentile, run } from './measure.js';

const HOSTS = 20;
const DEBIAN_PYTHON = '/usr/bin/python3';

export interface FanoutFigures {
  figures: Record<string, number>;
  lines: string[];
}

export async function benchRuntimeFanout(): Promise<FanoutFigures> {
  const fleet = await startFleet({ count: HOSTS });
  const home = mkdtempSync(join(tmpdir(), 'remux-bench-rtfan-'));
  const env: NodeJS.ProcessEnv = { ...process.env, REMUX_HOME: home, REMUX_KNOWN_HOSTS: fleet.knownHostsFile };
  delete env.REMUX_TOKEN;
  writeFileSync(join(home, 'hosts.yaml'), `hosts:\n${fleet.hosts.map((h) => `  ${h.name}: { address: ${h.address}, port: ${h.port}, user: ${h.user}, identity: ${h.identityFile} }\n`).join('')}`);
  // Unsandboxed, like the anchors (Mitogen, Ansible): the runtime starts `true` itself.
  writeFileSync(join(home, 'policies.yaml'), 'policies:\n  bench:\n    sandbox: false\n    capabilities:\n      - { operation: execute_binary, resource: "true" }\n      - { operation: write_stdout }\n');
  writeFileSync(join(home, 'config.yaml'), 'default_policy: bench\n');
  const figures: Record<string, number> = {};
  const lines: string[] = [];
  try {
    const call = (h: RuntimeHost): Promise<unknown> => h.exec(['true']).then((r) => r.code === 0 || Promise.reject(new Error(`${h.name}: true exited ${r.code}`)));
    const checked = async (ctx: ReturnType<typeof createContext>): Promise<number> => {
      const t0 = performance.now();
      const results = await fanout('all', call, { context: ctx });
      const ms = performance.now() - t0;
      if (results.summary.ok !== HOSTS) throw new Error(`runtime fan-out: ${JSON.stringify(results.summary)}: ${results.find((r) => !r.ok && r.error)?.toString()}`);
      return ms;
    };

    // Cold: a new context (no pooled connections), each round.
    const cold: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ctx = createContext({ env });
      try {
        const ms = await checked(ctx);
        if (i > 0) cold.push(ms); // the first warms page cache and sshd's first fork
      } finally {
        await ctx.close();
      }
    }
    // Warm: the same context again: its SSH connections pooled and each host's runtime kept from the last fanout() (links.ts).
    const ctx = createContext({ env });
    try {
      await checked(ctx);
      const warm: number[] = [];
      for (let i = 0; i < 7; i++) warm.push(await checked(ctx));
      // Held: the caller keeps the hosts connected between fan-outs, as Mitogen keeps its contexts.
      const hosts = await Promise.all(fleet.hosts.map((h) => connect(h.name, { context: ctx })));
      const kept: number[] = [];
      for (let i = 0; i < 25; i++) {
        const t0 = performance.now();
        await Promise.all(hosts.map(call));
        if (i >= 5) kept.push(performance.now() - t0);
      }
      await Promise.all(hosts.map((h) => h.close()));
      Object.assign(figures, { fanoutColdMs: percentile(cold, 50), fanoutWarmPoolMs: percentile(warm, 50), fanoutKeptMs: percentile(kept, 50) });
    } finally {
      await ctx.close();
    }
    lines.push(
      `fan-out of Exec.command true to ${HOSTS} hosts (policy + audit), median: cold ${ms(figures.fanoutColdMs)}; warm (fanout() again: SSH pooled, runtimes kept from the last one) ${ms(figures.fanoutWarmPoolMs)}; on hosts held connected ${ms(figures.fanoutKeptMs)}`,
    );

    const mitogen = await mitogenFanout(fleet);
    if ('error' in mitogen) lines.push(`Mitogen: not measured (${mitogen.error})`);
    else {
      Object.assign(figures, { mitogenFanoutColdMs: mitogen.cold, mitogenFanoutWarmMs: mitogen.warm });
      lines.push(
        `Mitogen 0.3.3 (router.ssh to each host from ${HOSTS} threads, call_async subprocess.call(['true'])): cold ${ms(mitogen.cold)} (remux ${ratio(figures.fanoutColdMs, mitogen.cold)}), ` +
          `warm (contexts kept) ${ms(mitogen.warm)} (remux warm ${ratio(figures.fanoutWarmPoolMs, mitogen.warm)}, held ${ratio(figures.fanoutKeptMs, mitogen.warm)})`,
      );
    }
    const ansible = await ansibleFanout(fleet, home);
    if ('error' in ansible) lines.push(`Ansible: not measured (${ansible.error})`);
    else {
      Object.assign(figures, { ansibleFanoutColdMs: ansible.cold, ansibleFanoutWarmMs: ansible.warm });
      lines.push(
        `Ansible ${ansible.version} (ansible all -m command -a true, forks ${HOSTS}, whole process): cold ${ms(ansible.cold)} (remux ${ratio(figures.fanoutColdMs, ansible.cold)}), ` +
          `warm over ControlPersist masters ${ms(ansible.warm)} (remux warm ${ratio(figures.fanoutWarmPoolMs, ansible.warm)})`,
      );
    }
    lines.push('pyinfra: not measured: not packaged in Debian 12, and PyPI cannot be reached from here');
    return { figures, lines };
  } finally {
    await fleet.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

const ms = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? 'n/a' : `${x.toFixed(1)} ms`);
const ratio = (a: number | undefined, b: number): string => (a === undefined ? 'n/a' : `${(a / b).toFixed(2)}×`);

const MITOGEN_SCRIPT = `
import json, sys, time, statistics, subprocess, threading
import mitogen.master
hosts = json.loads(sys.argv[1]); key, known = sys.argv[2:4]
def connect(router, h, out, i):
    out[i] = router.ssh(python_path=['/usr/bin/python3'], hostname=h['address'], port=h['port'], username=h['user'], identity_file=key,
                        check_host_keys='enforce', ssh_args=['-o', 'UserKnownHostsFile=' + known, '-o', 'GlobalKnownHostsFile=/dev/null', '-F', '/dev/null'])
def round_(ctxs):
    for r in [c.call_async(subprocess.call, ['true']) for c in ctxs]:
        assert r.get().unpickle() == 0
colds = []
for attempt in range(4):
    broker = mitogen.master.Broker(); router = mitogen.master.Router(broker)
    try:
        t = time.perf_counter()
        ctxs = [None] * len(hosts)
        ts = [threading.Thread(target=connect, args=(router, h, ctxs, i)) for i, h in enumerate(hosts)]
        [x.start() for x in ts]; [x.join() for x in ts]
        round_(ctxs)
        if attempt > 0: colds.append((time.perf_counter() - t) * 1000)
        if attempt == 3:
            warm = []
            for i in range(25):
                t = time.perf_counter(); round_(ctxs)
                if i >= 5: warm.append((time.perf_counter() - t) * 1000)
    finally:
        broker.shutdown(); broker.join()
print(json.dumps({'cold': statistics.median(colds), 'warm': statistics.median(warm)}))
`;

async function mitogenFanout(fleet: Fleet): Promise<{ cold: number; warm: number } | { error: string }> {
  if (!existsSync('/usr/lib/python3/dist-packages/mitogen')) return { error: 'python3-mitogen is not installed' };
  const hosts = JSON.stringify(fleet.hosts.map((h) => ({ address: h.address, port: h.port, user: h.user })));
  const r = await run([DEBIAN_PYTHON, '-c', MITOGEN_SCRIPT, hosts, fleet.hosts[0]!.identityFile, fleet.knownHostsFile]);
  if (r.code !== 0) return { error: `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}` };
  return JSON.parse(r.stdout) as { cold: number; warm: number };
}

async function ansibleFanout(fleet: Fleet, home: string): Promise<{ cold: number; warm: number; version: string } | { error: string }> {
  if (!existsSync('/usr/bin/ansible')) return { error: 'not installed (apt-get install ansible-core)' };
  const first = fleet.hosts[0]!;
  const inv = join(home, 'ansible-inventory');
  writeFileSync(inv, fleet.hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port} ansible_user=${h.user}`).join('\n'));
  const control = mkdtempSync('/tmp/rmxacp-');
  const env = (ssh: string): NodeJS.ProcessEnv => ({
    ...process.env,
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${fleet.knownHostsFile} -o IdentitiesOnly=yes ${ssh}`,
    ANSIBLE_PRIVATE_KEY_FILE: first.identityFile,
    ANSIBLE_FORKS: String(HOSTS),
    ANSIBLE_PYTHON_INTERPRETER: DEBIAN_PYTHON,
    ANSIBLE_LOCAL_TEMP: join(home, 'ansible-tmp'),
    ANSIBLE_SSH_CONTROL_PATH_DIR: control,
  });
  const once = async (ssh: string): Promise<number> => {
    const r = await run(['ansible', 'all', '-i', inv, '-m', 'command', '-a', 'true'], env(ssh));
    if (r.code !== 0) throw new Error(`ansible exit ${r.code}: ${(r.stdout + r.stderr).slice(0, 300)}`);
    return r.ms;
  };
  try {
    const version = (await run(['ansible', '--version'])).stdout.split('\n')[0]?.match(/\[core ([^\]]+)\]/)?.[1] ?? '?';
    const cold: number[] = [];
    for (let i = 0; i < 3; i++) cold.push(await once('-o ControlMaster=no'));
    const persist = '-o ControlMaster=auto -o ControlPersist=120s';
    await once(persist);
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) warm.push(await once(persist));
    return { cold: percentile(cold, 50), warm: percentile(warm, 50), version };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    await run(['sh', '-c', `for s in ${control}/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null; done; true`]);
    rmSync(control, { recursive: true, force: true });
  }
}
