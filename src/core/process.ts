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
