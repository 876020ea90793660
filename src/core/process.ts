// Whether a process still runs, by its pid.
import { readFileSync } from 'node:fs';

/**
 * True while PID runs, whoever's it is (EPERM: alive, another user's). A zombie has ended: only its
 * parent has not collected it yet (a shell or a test that started it, PID 1 in a container), and
 * kill(pid, 0) still succeeds for it, so on Linux its state is read from /proc.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  try {
    // "pid (comm) state …": comm may hold spaces and parentheses, so the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // Gone between the two looks.
    return false;
  }
}

/**
 * What tells PID's process from a later one given the same pid (pids are reused, after a reboot too):
 * the boot's id and the process's start time in clock ticks since boot, from /proc. null: no /proc
 * (not Linux), or no such process.
 */
export function processStartId(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after "pid (comm) " start with the 3rd, state: starttime, the 22nd, is the 20th of them.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const boot = bootId();
    return startTime && boot ? `${boot}/${startTime}` : null;
  } catch {
    return null;
  }
}

/** This boot of this machine, as processStartId names it (null: no /proc). Another machine's, or an earlier boot's, differs. */
export function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** The boot a processStartId was taken in (null: none was). */
export function bootOf(start: string | null): string | null {
  return start === null ? null : (start.split('/')[0] as string);
}

/** Whether the process that was PID when processStartId said `start` still runs, not a later one given its pid (null: the pid alone tells). */
export function sameProcessAlive(pid: number, start: string | null): boolean {
  return processAlive(pid) && (start === null || processStartId(pid) === start);
}
