// CPU-seconds per process over an interval, from /proc (Linux): utime + stime of each process, and
// cutime + cstime for the children it reaped (a shell's `cat`). Per-process CPU time is what the
// process itself used, so other load on the machine slows the run but does not inflate these figures;
// the machine's total busy time is given beside them to show how much else was running.
import { readdirSync, readFileSync } from 'node:fs';

const TICK_S = 0.01; // USER_HZ is 100 on Linux

/** utime + stime (+ cutime + cstime when `children`) in seconds; 0 for a process that is gone. */
function cpuSeconds(pid: number, children: boolean): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after the command name (which may hold spaces), from field 3: state is [0], utime [11].
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const own = f[11]! + f[12]!;
  return (children ? own + f[13]! + f[14]! : own) * TICK_S;
}

/** All busy (non-idle, non-iowait) CPU-seconds of the machine so far, every core together. */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) * TICK_S;
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Every live descendant of `root` (not root itself). */
export function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) if (/^\d+$/.test(name)) parents.set(Number(name), parentOf(Number(name)));
  const found: number[] = [];
  let frontier = [root];
  while (frontier.length > 0) {
    const next = [...parents].filter(([, ppid]) => frontier.includes(ppid)).map(([pid]) => pid);
    found.push(...next);
    frontier = next;
  }
  return found;
}

/** A Chromium process's role from its command line: browser, renderer, gpu, network, other utility. */
export function chromiumRole(pid: number): string {
  let argv: string;
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return 'gone';
  }
  const type = /--type=([\w-]+)/.exec(argv)?.[1];
  if (type === undefined) return 'browser';
  if (type === 'gpu-process') return 'gpu';
  if (type === 'utility') return argv.includes('NetworkService') ? 'network' : 'utility';
  return type;
}

/** The kernel's worker threads (a tty's output is pushed by kworkers): machine-wide, shared with any other load. */
export function kernelWorkers(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('kworker');
      } catch {
        return false;
      }
    });
}

/** Named groups of processes; `withChildren` groups also count the CPU of children they reaped. */
export interface CpuGroup {
  name: string;
  pids: number[];
  withChildren?: boolean;
}

export interface CpuSample {
  groups: Map<string, number>;
  machine: number;
  at: number;
}

export function sampleCpu(groups: readonly CpuGroup[]): CpuSample {
  const sums = new Map<string, number>();
  for (const g of groups) sums.set(g.name, (sums.get(g.name) ?? 0) + g.pids.reduce((n, pid) => n + cpuSeconds(pid, g.withChildren ?? false), 0));
  return { groups: sums, machine: machineBusySeconds(), at: performance.now() };
}

/** CPU-seconds per group between two samples, plus `machine` (all busy CPU) and `wall` seconds. */
export function cpuBetween(before: CpuSample, after: CpuSample): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of after.groups) out[name] = s - (before.groups.get(name) ?? 0);
  out.machine = after.machine - before.machine;
  out.wall = (after.at - before.at) / 1000;
  return out;
}
