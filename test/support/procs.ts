// This machine's process table, as tests look at it from outside (the fleet's hosts share it).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** The fields of /proc/PID/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: number): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export function parentOf(pid: number): number {
  return Number(statFields(pid)[1]);
}

/** Live (non-zombie) processes whose command line has this exact argument. */
export function liveWithArg(arg: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.includes(arg) && !statFields(Number(entry))[0]?.startsWith('Z')) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/**
 * Of those, the ones running `program` itself (their executable's name), not a helper that carries the
 * same arguments on its way to running it (remux-sandbox-enter before it joins the sandbox and execs).
 */
export function runningWithArg(arg: string, program: string): number[] {
  return liveWithArg(arg).filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`).endsWith(`/${program}`);
    } catch {
      return false; // ended meanwhile
    }
  });
}

/** Clock ticks a second, the unit of /proc/PID/stat's CPU times. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** The CPU time a process has used so far (user and system, all of its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A process's resident memory now, in bytes. */
export function rssBytes(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kib) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib[1]) * 1024;
}
