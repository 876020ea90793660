// Long-lived sandboxes (src/hosts/holder.ts) killed under a test, as something on the host might kill them.
import type { HolderSet } from '../../src/hosts/holder.js';

/**
 * SIGKILL to every holder's sandbox init and keeper. Killing the init ends the rest in a cascade (bwrap,
 * then the keeper), which can reap the keeper before its own kill comes: a process already gone is fine.
 */
export async function killHolders(holders: HolderSet): Promise<void> {
  for (const pid of await holders.pids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}
