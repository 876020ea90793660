// The agents' tmux server is named (tmux -L NAME, src/agents/tmux.ts), so its socket lives in tmux's own
// directory, not in a test's temporary one: a test ends the server and removes that socket too.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

/** Ends the tmux server on socket NAME (if any runs) and removes its socket file. */
export function endTmuxServer(name: string): void {
  try {
    execFileSync('tmux', ['-L', name, 'kill-server'], { stdio: 'ignore' });
  } catch {
    // no server left
  }
  rmSync(join(process.env.TMUX_TMPDIR || '/tmp', `tmux-${process.getuid!()}`, name), { force: true });
}
