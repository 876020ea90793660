// Long-lived sandboxes (src/hosts/holder.ts) killed under a test, as something on the host might kill them.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HolderSet } from '../../src/hosts/holder.js';

/** Exited (a zombie not reaped yet, or gone). */
function dead(pid: number): boolean {
  try {
    return /\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/**
 * SIGKILL to every holder's sandbox init and keeper, then waits until they have exited. Killing the init
 * ends the rest in a cascade (bwrap, then the keeper), which can reap the keeper before its own kill
 * comes: a process already gone is fine. Waiting matters: a command started before a kill takes effect
 * joins a sandbox about to die, and is killed with it (137), as it would be on a host.
 */
export async function killHolders(holders: HolderSet): Promise<void> {
  const pids = await holders.pids();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  for (const end = Date.now() + 5000; !pids.every(dead); await sleep(10)) {
    if (Date.now() > end) throw new Error(`holder processes still running 5 s after SIGKILL: ${pids.filter((p) => !dead(p)).join(' ')}`);
  }
}
