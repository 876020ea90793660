// A fleet of real sshd "hosts" for tests and the benchmark. As root each host gets its own network
// namespace on a private /24; otherwise every sshd listens on 127.0.0.1 with its own port.
//
// Layout (netns mode), for fleet id rmxf-<pid>-<rand>:
//   root ns: veth rmxf<N> = 198.18.x.1/24  ──  hub ns "<id>-hub": bridge br0 with port up0
//   host ns "<id>-<name>": eth0 = 198.18.x.(10+i)/24, lo up, sshd on eth0:22, peer p<i> on br0
// The bridge lives in its own namespace, so the root namespace gains one interface and one route,
// and deleting the namespaces removes everything.
//
// Sessions get HOME=<dir>/<name>/home, TMUX_TMPDIR=<dir>/<name>/tmux (one tmux server per host),
// RMXF_FLEET=<id> and RMXF_HOST=<name>; their working directory is still the login user's real
// home, where sshd puts them. stop(), kill() and the sweep of dead fleets find processes by those
// markers, by network namespace, and by sshd's process title (sshd overwrites its environment),
// plus all descendants.
//
// Hosts named in `withoutBwrap` lack bubblewrap: their sshd runs in a mount namespace of its own where
// /usr/bin/bwrap is /dev/null (not a regular file, so nobody finds a bwrap there). Hosts given
// `sudoers` text see it as /etc/sudoers the same way. Needs root.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { SshHostEntry } from '../../src/hosts/inventory.js';
import { freePort } from '../support/free-port.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface FleetHost {
  /** prefix + index: h1, h2, … */
  name: string;
  /** Where sshd listens: 198.18.x.y (netns) or 127.0.0.1 (loopback). */
  address: string;
  /** 22 in netns mode, a free port in loopback mode. */
  port: number;
  /** root when running as root, else the current user. */
  user: string;
  /** The fleet's client key (ed25519, no passphrase), authorized on every host. */
  identityFile: string;
  /** `addr ssh-ed25519 AAAA…`, or `[addr]:port ssh-ed25519 AAAA…` when the port is not 22. */
  hostKeyLine: string;
  /** The listening sshd, or null while it is down. */
  sshdPid(): number | null;
  /** Signals the listener and every session sshd (default SIGKILL: open connections drop). */
  kill(signal?: NodeJS.Signals): void;
  /** Stops whatever sshd is left (sessions too) and starts it again with the same key and address. */
  restart(): Promise<void>;
  /** Unreachable: netns drops every packet (link down); loopback SIGSTOPs sshd (connects hang). */
  cut(): Promise<void>;
  heal(): Promise<void>;
  /** Runs a program "on" the host: in its namespace, with the session environment. */
  exec(argv: string[]): Promise<ExecResult>;
  /** Starts a program on the host like exec() and leaves it running (stop() ends it with the fleet). */
  spawn(argv: string[]): ChildProcess;
}

export interface Fleet {
  hosts: FleetHost[];
  mode: 'netns' | 'loopback';
  dir: string;
  knownHostsFile: string;
  stop(): Promise<void>;
}

export interface FleetOptions {
  count: number;
  /** Host name prefix: "h" gives h1, h2, … */
  prefix?: string;
  mode?: 'auto' | 'netns' | 'loopback';
  maxSessions?: number;
  maxStartups?: string;
  /** Hosts (by name) whose sessions see no bubblewrap. */
  withoutBwrap?: string[];
  /** Hosts (by name) whose sessions see this text as /etc/sudoers (real sudo, the test's rules). Needs root. */
  sudoers?: Record<string, string>;
}

/** Environment variables every process of a fleet carries. */
export const FLEET_ENV = 'RMXF_FLEET';
export const HOST_ENV = 'RMXF_HOST';

const SSHD = '/usr/sbin/sshd';
const BWRAP = '/usr/bin/bwrap';
const ID_PREFIX = 'rmxf';
const ID_RE = /^(rmxf-(\d+)-[0-9a-z]{4})(?:-[A-Za-z0-9-]+)?$/;
// 198.18.0.0/15 is reserved for network benchmarking (RFC 2544): 512 candidate /24s.
const SUBNET_BASE = 198 * 2 ** 24 + 18 * 2 ** 16;
const SUBNET_COUNT = 512;
const MAX_HOSTS = 200;
const START_TIMEOUT_MS = 5000;

interface HostState {
  name: string;
  index: number;
  dir: string;
  ns: string | null;
  address: string;
  port: number;
  mac: string;
  config: string;
  log: string;
  hostKeyLine: string;
  child: ChildProcess | null;
  /** [source, target] pairs bind-mounted in the sshd's own mount namespace. */
  binds: Array<[string, string]>;
}

interface FleetState {
  id: string;
  dir: string;
  namespaces: string[];
  rootVeth: string | null;
}

const live = new Set<FleetState>();
let exitHookInstalled = false;

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const count = opts.count;
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) throw new Error(`fleet size must be 1..${MAX_HOSTS}`);
  const prefix = opts.prefix ?? 'h';
  if (!/^[a-z][a-z0-9-]{0,15}$/i.test(prefix)) throw new Error(`bad host name prefix: ${prefix}`);
  const isRoot = process.getuid?.() === 0;
  const wanted = opts.mode ?? 'auto';
  if (wanted === 'netns' && !isRoot) throw new Error('netns mode needs root');
  if (((opts.withoutBwrap ?? []).length > 0 || Object.keys(opts.sudoers ?? {}).length > 0) && !isRoot) {
    throw new Error('hosts without bubblewrap or with their own sudoers need root (a mount namespace per sshd)');
  }

  sweepDeadFleets();
  const id = `${ID_PREFIX}-${process.pid}-${randomBytes(4).readUInt32BE(0).toString(36).padStart(4, '0').slice(-4)}`;
  const dir = path.join(os.tmpdir(), id);
  // sshd_config and AuthorizedKeysFile take unquoted, %-expanded paths.
  if (/[\s"'%\\]/.test(dir)) throw new Error(`temp dir path unsuitable for sshd_config: ${dir}`);
  mkdirSync(dir, { mode: 0o700 });
  const state: FleetState = { id, dir, namespaces: [], rootVeth: null };
  live.add(state);
  installExitHook();

  try {
    const user = isRoot ? 'root' : os.userInfo().username;
    const identityFile = path.join(dir, 'id_ed25519');
    const hosts: HostState[] = [];
    for (let i = 1; i <= count; i++) {
      const name = `${prefix}${i}`;
      const hostDir = path.join(dir, name);
      hosts.push({
        name, index: i, dir: hostDir, ns: null, address: '127.0.0.1', port: 22, mac: '',
        config: path.join(hostDir, 'sshd_config'), log: path.join(hostDir, 'sshd.log'), hostKeyLine: '', child: null,
        binds: [
          ...(opts.withoutBwrap?.includes(name) ? [['/dev/null', BWRAP] as [string, string]] : []),
          ...(opts.sudoers?.[name] !== undefined ? [[path.join(hostDir, 'sudoers'), '/etc/sudoers'] as [string, string]] : []),
        ],
      });
    }
    const keysReady = Promise.all([
      keygen(identityFile).then((pub) => writeFile(path.join(dir, 'authorized_keys'), `${pub}\n`)),
      ...hosts.map(async (h) => {
        await Promise.all(['tmux', 'home'].map((sub) => mkdir(path.join(h.dir, sub), { recursive: true, mode: 0o700 })));
        // sudo reads only a root-owned file that nobody else can write.
        const sudoers = opts.sudoers?.[h.name];
        if (sudoers !== undefined) await writeFile(path.join(h.dir, 'sudoers'), sudoers, { mode: 0o440 });
        h.hostKeyLine = await keygen(path.join(h.dir, 'ssh_host_ed25519_key'));
      }),
    ]);
    // Awaited below; marked handled so a failure elsewhere first is not an unhandled rejection.
    keysReady.catch(() => undefined);
    let mode: 'netns' | 'loopback' = 'loopback';
    if (wanted !== 'loopback' && isRoot) {
      if (await addNamespaces(state, hosts)) mode = 'netns';
      else if (wanted === 'netns') throw new Error('ip netns add failed: network namespaces unavailable');
    }
    if (mode === 'netns') await wireNetwork(state, hosts);
    await keysReady;
    // Privilege separation directory; sshd refuses to start as root without it.
    if (isRoot) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

    const ctx: SshdContext = { state, maxSessions: opts.maxSessions ?? 10, maxStartups: opts.maxStartups ?? '10:30:100' };
    await Promise.all(hosts.map((h) => (mode === 'netns' ? startSshd(ctx, h) : startLoopbackSshd(ctx, h))));
    for (const h of hosts) {
      const [type, key] = h.hostKeyLine.split(' ');
      h.hostKeyLine = `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${type} ${key}`;
    }
    const knownHostsFile = path.join(dir, 'known_hosts');
    await writeFile(knownHostsFile, hosts.map((h) => `${h.hostKeyLine}\n`).join(''), { mode: 0o600 });

    let stopped = false;
    return {
      mode,
      dir,
      knownHostsFile,
      hosts: hosts.map((h) => hostApi(ctx, h, user, identityFile)),
      stop: async () => {
        if (stopped) return;
        stopped = true;
        destroy(state);
      },
    };
  } catch (err) {
    destroy(state);
    throw err;
  }
}

interface SshdContext {
  state: FleetState;
  maxSessions: number;
  maxStartups: string;
}

function hostApi(ctx: SshdContext, h: HostState, user: string, identityFile: string): FleetHost {
  const sshdProcesses = (): number[] =>
    hostPids(ctx.state, h).filter((pid) => processInfo(pid)?.comm === 'sshd');
  // SIGKILL to each, listed again until none is left: a connection's sshd may fork its session's sshd
  // between a listing and the signal, and that one (its parent gone) would go on serving the session.
  const killEverySshd = (): void => {
    for (const deadline = Date.now() + 2000; ; ) {
      const pids = sshdProcesses();
      if (pids.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${h.name}: sshd processes ${pids.join(', ')} outlived SIGKILL`);
      for (const pid of pids) signalPid(pid, 'SIGKILL');
      waitGoneSync(pids, 2000);
    }
  };
  return {
    name: h.name,
    address: h.address,
    port: h.port,
    user,
    identityFile,
    hostKeyLine: h.hostKeyLine,
    sshdPid: () => {
      const child = h.child;
      // exitCode guards against a recycled pid once node has reaped the child.
      if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return null;
      return isAlive(child.pid) ? child.pid : null;
    },
    // The listener and every per-connection sshd: open sessions drop as if the host's sshd died.
    // After SIGKILL, returns once they are dead, so sshdPid() and new connects see it at once.
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (signal === 'SIGKILL') return killEverySshd();
      for (const pid of sshdProcesses()) signalPid(pid, signal);
    },
    // Sessions go too (as with kill()), so no session process outlives its listener untracked.
    restart: async () => {
      const pids = sshdProcesses();
      for (const pid of pids) {
        signalPid(pid, 'SIGTERM');
        signalPid(pid, 'SIGCONT');
      }
      await waitGone(pids, 2000);
      killEverySshd();
      await startSshd(ctx, h);
    },
    cut: async () => {
      if (h.ns) await must('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'down']);
      // A stopped sshd still completes TCP handshakes from its backlog, then never speaks: a hung host.
      else for (const pid of sshdProcesses()) signalPid(pid, 'SIGSTOP');
    },
    heal: async () => {
      if (h.ns) await must('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      else for (const pid of sshdProcesses()) signalPid(pid, 'SIGCONT');
    },
    exec: (argv: string[]) => {
      if (argv.length === 0) throw new Error('exec needs a program');
      const env = hostEnv(ctx.state, h);
      return h.ns ? run('ip', ['netns', 'exec', h.ns, ...argv], { env }) : run(argv[0] as string, argv.slice(1), { env });
    },
    spawn: (argv: string[]) => {
      const [cmd, ...args] = h.ns ? ['ip', 'netns', 'exec', h.ns, ...argv] : argv;
      if (cmd === undefined) throw new Error('spawn needs a program');
      return spawn(cmd, args, { env: hostEnv(ctx.state, h), stdio: ['ignore', 'pipe', 'pipe'] });
    },
  };
}

/** What every session on the host gets (sshd SetEnv), and exec() too. */
function sessionEnv(state: FleetState, h: HostState): Record<string, string> {
  return { HOME: path.join(h.dir, 'home'), TMUX_TMPDIR: path.join(h.dir, 'tmux'), [FLEET_ENV]: state.id, [HOST_ENV]: h.name };
}

function hostEnv(state: FleetState, h: HostState): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...sessionEnv(state, h) };
  // Inside a tmux pane, TMUX would make the host's tmux believe it is nested in ours.
  delete env.TMUX;
  return env;
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/** Creates the hub and host namespaces; false when the kernel or container forbids it. */
async function addNamespaces(state: FleetState, hosts: HostState[]): Promise<boolean> {
  const hub = `${state.id}-hub`;
  const names = [hub, ...hosts.map((h) => `${state.id}-${h.name}`)];
  const res = await run('ip', ['-batch', '-'], { input: names.map((n) => `netns add ${n}\n`).join('') });
  // Record whatever got created so destroy() removes it even after a partial failure.
  state.namespaces = names.filter((n) => existsSync(`/run/netns/${n}`));
  if (res.code !== 0) return false;
  hosts.forEach((h, i) => {
    h.ns = names[i + 1] as string;
  });
  return true;
}

async function wireNetwork(state: FleetState, hosts: HostState[]): Promise<void> {
  const hub = `${state.id}-hub`;
  const subnet = await claimSubnet(state, hub);
  const ip = (last: number): string => intToIp(subnet + last);
  const idx = (subnet - SUBNET_BASE) / 256;
  for (const h of hosts) {
    h.address = ip(10 + h.index);
    h.mac = ['02', '72', '78', idx >> 8, idx & 255, h.index].map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':');
  }
  const veth = state.rootVeth as string;
  // Only our own interface is touched in the root namespace. IPv6 off keeps it silent; permanent
  // neighbour entries mean a cut host drops packets instead of failing ARP ("no route to host").
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${veth}/disable_ipv6`, '1');
  } catch {
    // No IPv6 in this kernel: nothing to silence.
  }
  await Promise.all([
    must('ip', ['-batch', '-'], {
      input: [
        `addr add ${ip(1)}/24 dev ${veth}`,
        `link set ${veth} up`,
        ...hosts.map((h) => `neigh replace ${h.address} lladdr ${h.mac} dev ${veth} nud permanent`),
      ].join('\n') + '\n',
    }),
    must('ip', ['-n', hub, '-batch', '-'], {
      input: [
        'link add br0 type bridge',
        'link set up0 master br0 up',
        ...hosts.flatMap((h) => [
          `link add p${h.index} type veth peer name eth0 address ${h.mac} netns ${h.ns}`,
          `link set p${h.index} master br0 up`,
        ]),
        'link set br0 up',
      ].join('\n') + '\n',
    }),
  ]);
  await Promise.all(
    hosts.map((h) =>
      must('ip', ['-n', h.ns as string, '-batch', '-'], {
        input: `link set lo up\naddr add ${h.address}/24 dev eth0\nlink set eth0 up\n`,
      }),
    ),
  );
}

/**
 * Picks a /24 in 198.18.0.0/15 that overlaps no route or address on this machine. The root-side
 * veth is named after the subnet, so creating it is an atomic claim against concurrent fleets.
 */
async function claimSubnet(state: FleetState, hub: string): Promise<number> {
  const [routes, addrs] = await Promise.all([
    must('ip', ['-4', '-o', 'route', 'show', 'table', 'all']),
    must('ip', ['-4', '-o', 'addr', 'show']),
  ]);
  const taken = [...parsePrefixes(routes.stdout, 'route'), ...parsePrefixes(addrs.stdout, 'addr')];
  const start = randomBytes(2).readUInt16BE(0) % SUBNET_COUNT;
  for (let k = 0; k < SUBNET_COUNT; k++) {
    const idx = (start + k) % SUBNET_COUNT;
    const net24 = SUBNET_BASE + idx * 256;
    if (taken.some(([base, len]) => overlaps(base, len, net24, 24))) continue;
    const name = `${ID_PREFIX}${idx}`;
    const res = await run('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', 'up0', 'netns', hub]);
    if (res.code === 0) {
      state.rootVeth = name;
      return net24;
    }
    if (!/exists/i.test(res.stderr)) throw new Error(`ip link add ${name} failed: ${res.stderr.trim()}`);
  }
  throw new Error('no free /24 in 198.18.0.0/15 for the fleet');
}

/** IPv4 prefixes from `ip -o route` / `ip -o addr` output; the default route is ignored. */
function parsePrefixes(text: string, kind: 'route' | 'addr'): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const word = kind === 'addr' ? words[words.indexOf('inet') + 1] : words.find((w) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(w));
    const m = word === undefined ? null : /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(word);
    if (!m) continue;
    const len = m[2] === undefined ? 32 : Number(m[2]);
    if (len > 0) out.push([ipToInt(m[1] as string), len]);
  }
  return out;
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  const len = Math.min(alen, blen);
  const size = 2 ** (32 - len);
  return Math.floor(a / size) === Math.floor(b / size);
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

// ---------------------------------------------------------------------------------------------
// sshd

function writeConfig(ctx: SshdContext, h: HostState): void {
  const lines = [
    `ListenAddress ${h.address}:${h.port}`,
    `Port ${h.port}`,
    `HostKey ${path.join(h.dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${path.join(h.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(ctx.state.dir, 'authorized_keys')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    // The fleet's temp dir is not root-owned 0755 all the way up when running as a user.
    'StrictModes no',
    'UsePAM no',
    `MaxSessions ${ctx.maxSessions}`,
    `MaxStartups ${ctx.maxStartups}`,
    'LogLevel ERROR',
    'PrintMotd no',
    'PrintLastLog no',
    // Each host has its own home and tmux server, and its sessions are traceable for cleanup. The
    // login user's real rc files (pyenv, conda, …) would make sessions slow and racy.
    `SetEnv ${Object.entries(sessionEnv(ctx.state, h)).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    'PermitUserRC no',
    // File actions (src/hosts/sftp.ts) speak SFTP; in-process, so no extra program to track.
    'Subsystem sftp internal-sftp',
  ];
  writeFileSync(h.config, lines.join('\n') + '\n');
}

async function startSshd(ctx: SshdContext, h: HostState): Promise<void> {
  writeConfig(ctx, h);
  const sshd = [SSHD, '-D', '-e', '-f', h.config];
  // unshare and sh exec sshd: the child's pid stays sshd's.
  const mounts = h.binds.map(([source, target]) => `mount --bind ${source} ${target} && `).join('');
  const argv = h.binds.length > 0 ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${mounts}exec "$@"`, 'sh', ...sshd] : sshd;
  const log = openSync(h.log, 'a');
  try {
    const [cmd, ...args] = h.ns ? ['ip', 'netns', 'exec', h.ns, ...argv] : argv;
    // `ip netns exec` execs sshd, so the child's pid is sshd's.
    h.child = spawn(cmd as string, args, { stdio: ['ignore', log, log], env: hostEnv(ctx.state, h) });
  } finally {
    closeSync(log);
  }
  // A test that forgets stop() must still be able to exit; the exit hook kills sshd.
  h.child.unref();
  await waitListening(h);
}

/** Loopback: a free port is only free until someone takes it, so retry on a lost bind. */
async function startLoopbackSshd(ctx: SshdContext, h: HostState): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    h.port = await freePort();
    try {
      await startSshd(ctx, h);
      return;
    } catch (err) {
      if (attempt >= 5 || !/Address already in use/.test(String(err))) throw err;
    }
  }
}

async function waitListening(h: HostState): Promise<void> {
  const child = h.child as ChildProcess;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sshd for ${h.name} exited: ${readFileSync(h.log, 'utf8').trim()}`);
    }
    if (await canConnect(h.address, h.port)) return;
    if (Date.now() > deadline) throw new Error(`sshd for ${h.name} not accepting on ${h.address}:${h.port}`);
    await sleep(10);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(250, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function keygen(file: string): Promise<string> {
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file]);
  const [type, key] = (await readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/);
  return `${type} ${key}`;
}

// ---------------------------------------------------------------------------------------------
// Processes and teardown

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
}

function processInfo(pid: number): Proc | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may hold spaces and parentheses: it runs from the first '(' to the last ')'.
  const close = stat.lastIndexOf(')');
  const [state = '', ppid = '0'] = stat.slice(close + 2).split(' ');
  return { pid, ppid: Number(ppid), comm: stat.slice(stat.indexOf('(') + 1, close), state };
}

function isAlive(pid: number): boolean {
  const info = processInfo(pid);
  return info !== null && info.state !== 'Z' && info.state !== 'X';
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'latin1');
  } catch {
    return '';
  }
}

function netnsInode(file: string): number | null {
  try {
    return statSync(file).ino;
  } catch {
    return null;
  }
}

interface ProcessSelector {
  /** Network namespaces whose every process belongs to the selection. */
  namespaces: string[];
  /** Environment entries (NAME=value) that must all be present. */
  env: string[];
  /** Command-line fragment: sshd's process title keeps its config path. */
  cmdline: string;
}

/**
 * Live processes matching the selector, plus all their descendants. sshd rewrites its process
 * title over its environment, so its processes are found by title (listener) or as children of a
 * match (per-connection processes); everything it starts carries the SetEnv markers.
 */
function selectProcesses(sel: ProcessSelector): number[] {
  const inodes = new Set(sel.namespaces.map((n) => netnsInode(`/run/netns/${n}`)).filter((i): i is number => i !== null));
  const procs = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((e) => processInfo(Number(e)))
    .filter((p): p is Proc => p !== null && p.pid !== process.pid && p.state !== 'Z' && p.state !== 'X');
  const matches = (pid: number): boolean => {
    if (inodes.size > 0) {
      const ino = netnsInode(`/proc/${pid}/ns/net`);
      if (ino !== null && inodes.has(ino)) return true;
    }
    if (readProc(pid, 'cmdline').includes(sel.cmdline)) return true;
    const env = readProc(pid, 'environ').split('\0');
    return sel.env.every((entry) => env.includes(entry));
  };
  const children = new Map<number, number[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const found = new Set<number>();
  const queue = procs.filter((p) => matches(p.pid)).map((p) => p.pid);
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...found];
}

function fleetPids(state: FleetState): number[] {
  return selectProcesses({ namespaces: state.namespaces, env: [`${FLEET_ENV}=${state.id}`], cmdline: `${state.dir}/` });
}

function hostPids(state: FleetState, h: HostState): number[] {
  return selectProcesses({
    namespaces: h.ns ? [h.ns] : [],
    env: [`${FLEET_ENV}=${state.id}`, `${HOST_ENV}=${h.name}`],
    cmdline: h.config,
  });
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function waitGoneSync(pids: number[], timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) sleepSync(2);
}

async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(10);
}

/**
 * Synchronous so the process `exit` hook can use it: kill every fleet process (repeat while sshd
 * may still be forking), then delete the root veth, the namespaces and the temp dir.
 */
function destroy(state: FleetState): void {
  live.delete(state);
  for (let round = 0; round < 5; round++) {
    const pids = fleetPids(state);
    if (pids.length === 0) break;
    for (const pid of pids) signalPid(pid, 'SIGKILL');
    waitGoneSync(pids, 2000);
  }
  const batch = [...(state.rootVeth ? [`link del ${state.rootVeth}`] : []), ...state.namespaces.map((n) => `netns del ${n}`)];
  if (batch.length > 0) spawnSync('ip', ['-force', '-batch', '-'], { input: batch.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
  rmSync(state.dir, { recursive: true, force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const state of [...live]) destroy(state);
  });
}

/**
 * Removes what crashed or killed test runs left behind: fleets whose owner pid is gone. (A
 * recycled pid keeps a dead fleet until that process exits; the next sweep gets it.)
 */
function sweepDeadFleets(): void {
  const found = new Map<string, FleetState>();
  const note = (name: string, dir: string | null, ns: string | null): void => {
    const m = ID_RE.exec(name);
    // A zombie owner is dead too: kill(pid, 0) would still succeed on it.
    if (!m || isAlive(Number(m[2]))) return;
    const id = m[1] as string;
    const state = found.get(id) ?? { id, dir: path.join(os.tmpdir(), id), namespaces: [], rootVeth: null };
    if (ns) state.namespaces.push(ns);
    if (dir) state.dir = dir;
    found.set(id, state);
  };
  for (const ns of listDir('/run/netns')) note(ns, null, ns);
  for (const entry of listDir(os.tmpdir())) if (entry.startsWith(`${ID_PREFIX}-`)) note(entry, path.join(os.tmpdir(), entry), null);
  for (const state of found.values()) destroy(state);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes

function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({ code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0), stdout, stderr });
    });
    // The child may exit without reading its input.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

async function must(cmd: string, args: string[], opts: { input?: string } = {}): Promise<ExecResult> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.code}): ${res.stderr.trim()}`);
  return res;
}

/** The host as an inventory entry (its key, no labels, no jump host), for a ConnectionPool. */
export function inventoryEntry(h: FleetHost): SshHostEntry {
  return { name: h.name, transport: 'ssh', address: h.address, port: h.port, user: h.user, auth: { method: 'identity', file: h.identityFile }, labels: {}, jump: null, builtin: false };
}

/** Whether a process whose command line matches `pattern` (pgrep -f) runs on the host. */
export async function runningOn(h: FleetHost, pattern: string): Promise<boolean> {
  return (await h.exec(['pgrep', '-f', pattern])).code === 0;
}

/** Waits until a process matching `pattern` runs on the host: up to 10 s, as a loaded machine takes seconds to connect and start a sandbox. */
export async function waitRunning(h: FleetHost, pattern: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    if (await runningOn(h, pattern)) return;
  }
  if (!(await runningOn(h, pattern))) throw new Error(`${pattern} should have started on ${h.name}`);
}

/** Waits up to `ms` for no process matching `pattern` to run on the host; whether none does. */
export async function goneFrom(h: FleetHost, pattern: string, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    if (!(await runningOn(h, pattern))) return true;
  }
  return !(await runningOn(h, pattern));
}
